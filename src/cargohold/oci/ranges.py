"""Range headers: upload chunks (spec.md, "Pushing a blob in chunks") and blob reads.

Blob reads follow RFC 9110 section 14: ``Range`` on a ``GET``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cargohold.oci.errors import RangeInvalid

# ASCII digits only (``\d`` also matches other scripts' digits, which int() accepts),
# and few enough that int() never meets its 4,300-digit limit.
_CONTENT_RANGE = re.compile(
    r"^(?:bytes[ =])?([0-9]{1,30})-([0-9]{1,30})(?:/(?:[0-9]{1,30}|\*))?$"
)
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")
# More ranges than this in one request are ignored (the whole blob is sent): RFC 9110
# section 14.2 lets a server ignore a range set that is unreasonably fragmented.
MAX_RANGES = 100
_DIGITS = 18  # longer numbers are beyond any blob size; never converted


@dataclass(frozen=True, slots=True)
class Unsatisfiable:
    """A valid ``Range`` no byte of the blob satisfies: 416, ``bytes */<size>``."""

    size: int


def parse_content_range(value: str) -> tuple[int, int]:
    """Parse an upload ``Content-Range`` of ``<start>-<end>`` (inclusive) into a pair.

    Raises ``RangeInvalid`` (416) for anything else, as the spec asks for chunks that
    cannot be applied.
    """
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if not match:
        raise RangeInvalid(f"malformed Content-Range: {value[:100]!r}")
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RangeInvalid(f"Content-Range end before start: {value[:100]!r}")
    return start, end


def upload_range(size: int) -> str:
    """The ``Range`` header value for an upload holding ``size`` bytes.

    Of the form ``0-<last>``.
    """
    return f"0-{max(size - 1, 0)}"


def upload_progress_headers(
    repository: str, upload_id: str, size: int
) -> dict[str, str]:
    """Where an upload session is and how much it holds (spec.md, "Pushing blobs")."""
    return {
        "Location": f"/v2/{repository}/blobs/uploads/{upload_id}",
        "Range": upload_range(size),
        "Docker-Upload-UUID": upload_id,
    }


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= _DIGITS else 10**_DIGITS


class _InvalidRangeSpec(Exception):
    """Not a valid byte ``range-spec``: the whole header is ignored."""


def _range_spec(spec: str, size: int) -> tuple[int, int] | None:
    """One ``range-spec`` as a half-open pair, ``None`` if unsatisfiable.

    Raises ``_InvalidRangeSpec``.
    """
    if match := _INT_RANGE.fullmatch(spec):
        first = _position(match.group(1))
        last = _position(match.group(2)) if match.group(2) else None
        if last is not None and last < first:
            raise _InvalidRangeSpec
        if first >= size:
            return None
        return first, size if last is None else min(last + 1, size)
    if match := _SUFFIX_RANGE.fullmatch(spec):
        length = _position(match.group(1))
        if length == 0 or size == 0:
            return None
        return max(size - length, 0), size
    raise _InvalidRangeSpec


def parse_byte_ranges(
    value: str, size: int
) -> list[tuple[int, int]] | Unsatisfiable | None:
    """The ranges a ``Range`` header asks of a blob of ``size`` bytes (RFC 9110 14.1.2).

    Returns half-open ``(start, end)`` pairs, sorted, overlapping or adjacent ones
    merged; ``Unsatisfiable`` when the set is valid but no range overlaps the blob
    (416); ``None`` when the header must be ignored and the whole blob sent (200): an
    unknown unit, an invalid range set (section 14.2), or more than ``MAX_RANGES``.
    """
    unit, equals, range_set = value.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in range_set.split(",")]
    specs = [s for s in specs if s]  # a list may hold empty elements (section 5.6.1)
    if not specs or len(specs) > MAX_RANGES:
        return None
    try:
        satisfiable = [_range_spec(spec, size) for spec in specs]
    except _InvalidRangeSpec:
        return None
    ranges = [r for r in satisfiable if r is not None]
    if not ranges:
        return Unsatisfiable(size)
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
