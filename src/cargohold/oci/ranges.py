"""Range headers on uploads (spec.md, "Pushing a blob in chunks")."""

from __future__ import annotations

import re

from cargohold.oci.errors import RangeInvalid

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


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
