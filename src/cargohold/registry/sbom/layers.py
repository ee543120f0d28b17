"""Read an image's layers as one filesystem, streamed: only what detectors want.

Each layer is a tar stream, gzip- or zstd-compressed or plain (told by its first
bytes, not by the media type a client declared). Members are visited in order and
never extracted; a member a detector wants is read into memory only up to that
detector's cap. Layers are applied bottom to top as the OCI image spec's
"Applying Changesets" says: a later file at the same path replaces an earlier one,
``.wh.<name>`` deletes ``<name>`` (and what is under it) from the layers below, and
``.wh..wh..opq`` in a directory hides everything the layers below had there.

Memory is bounded by what is found (packages, capped by ``MAX_PACKAGES``) and by one
wanted member at a time, whatever the size of the image.
"""

from __future__ import annotations

import gzip
import posixpath
import tarfile
import zlib
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast

import zstandard

from cargohold.registry.sbom.detectors import Found, Wanted, want

if TYPE_CHECKING:
    from typing import IO

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_PACKAGES = 200_000
# A plain tar starts with a 512-byte header; these are the compressed forms' magics.
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"


class LayerUnreadable(Exception):
    """A layer is not a (gzip/zstd) tar, is corrupt, or the image is too big."""


class ByteSource(Protocol):
    """A blob's bytes, read forward (``read(n)`` returns b"" at the end)."""

    def read(self, size: int = -1, /) -> bytes: ...


def normalise(name: str) -> str | None:
    """A member name as a path from the image root, or None if it leaves the root."""
    parts: list[str] = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts) if parts else None


class _Counted:
    """Counts what is read through it and stops at ``limit`` bytes."""

    def __init__(self, source: ByteSource, limit: int, seen: list[int]) -> None:
        self._source = source
        self._limit = limit
        self._seen = seen  # shared across the image's layers

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self._seen[0] += len(data)
        if self._seen[0] > self._limit:
            raise LayerUnreadable(
                f"the image is larger than {self._limit} bytes uncompressed "
                "(sbom.max_image_bytes)"
            )
        return data


class _Peeked:
    """A source with its first bytes read already and given back."""

    def __init__(self, head: bytes, rest: ByteSource) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def _decompressed(source: ByteSource) -> ByteSource:
    head = b""
    while len(head) < len(_ZSTD):
        more = source.read(len(_ZSTD) - len(head))
        if not more:
            break
        head += more
    peeked = _Peeked(head, source)
    if head.startswith(_ZSTD):
        reader = zstandard.ZstdDecompressor().stream_reader(
            cast("IO[bytes]", peeked), closefd=False
        )
        return cast("ByteSource", reader)
    if head.startswith(_GZIP):
        return gzip.GzipFile(fileobj=cast("IO[bytes]", peeked), mode="rb")
    return peeked


@dataclass(slots=True)
class LayerChanges:
    """What one layer contributes: its findings, and what it removes below it."""

    found: dict[str, list[Found]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)  # non-directory paths it holds
    deleted: list[str] = field(default_factory=list)  # whiteouts: path and below
    opaque: list[str] = field(default_factory=list)  # directories emptied below
    count: int = 0  # packages in ``found``


def read_layer(
    source: ByteSource,
    *,
    limit: int,
    seen: list[int],
    below: Container[str] = frozenset(),
    wanted: Callable[[str, int], Wanted | None] = want,
) -> LayerChanges:
    """Walk one layer's tar stream and run the detectors on what they want.

    ``below``: the paths the layers below found something in; only those are
    remembered as replaced (``written``), so memory does not grow with file counts.

    Raises:
        LayerUnreadable: not a tar (after decompression), corrupt, or past ``limit``.
    """
    changes = LayerChanges()
    try:
        # Counted after decompression: the limit bounds the work, not the download.
        stream = _Counted(_decompressed(source), limit, seen)
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                _visit(tar, member, changes, below, wanted)
    except LayerUnreadable:
        raise
    except (
        tarfile.TarError,
        gzip.BadGzipFile,
        zlib.error,
        zstandard.ZstdError,
        EOFError,
    ) as exc:
        raise LayerUnreadable(f"not a readable tar layer: {exc}") from None
    return changes


def _visit(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    changes: LayerChanges,
    below: Container[str],
    wanted: Callable[[str, int], Wanted | None],
) -> None:
    path = normalise(member.name)
    if path is None or member.isdir() or _whiteout(path, changes):
        return  # outside the root (nothing a filesystem would show), or no file
    if path in below:
        changes.written.add(path)
    # Links and devices are never followed.
    detector = wanted(path, member.size) if member.isreg() else None
    handle = tar.extractfile(member) if detector is not None else None
    if detector is not None and handle is not None:
        found = detector(path, handle, member.size)
        if found:
            changes.found[path] = found
            changes.count += len(found)
            if changes.count > MAX_PACKAGES:
                raise LayerUnreadable(f"more than {MAX_PACKAGES} packages in a layer")


def _whiteout(path: str, changes: LayerChanges) -> bool:
    """Record ``path`` if it is a whiteout or an opaque marker; whether it was."""
    directory, base = posixpath.split(path)
    if base == OPAQUE:
        changes.opaque.append(directory)
        return True
    if base.startswith(WHITEOUT):
        changes.deleted.append(posixpath.join(directory, base[len(WHITEOUT) :]))
        return True
    return False


def _under(path: str, directory: str) -> bool:
    return directory in ("", path) or path.startswith(directory + "/")


@dataclass(slots=True)
class Filesystem:
    """The findings of the layers applied so far, by path."""

    found: dict[str, list[Found]] = field(default_factory=dict)

    def apply(self, layer: LayerChanges) -> None:
        removed = [*layer.opaque, *layer.deleted]
        if removed:
            self.found = {
                path: items
                for path, items in self.found.items()
                if not any(_under(path, gone) for gone in removed)
            }
        # A later layer's file replaces the earlier one, found or not.
        for path in layer.written:
            self.found.pop(path, None)
        self.found.update(layer.found)
        if sum(len(items) for items in self.found.values()) > MAX_PACKAGES:
            raise LayerUnreadable(f"more than {MAX_PACKAGES} packages")

    def packages(self) -> Iterator[Found]:
        for path in sorted(self.found):
            yield from self.found[path]


def read_image(
    layers: Iterable[ByteSource],
    *,
    limit: int,
    wanted: Callable[[str, int], Wanted | None] = want,
) -> list[Found]:
    """Every package in the image the layers (bottom first) make, path order.

    Raises:
        LayerUnreadable: as ``read_layer``.
    """
    seen = [0]
    filesystem = Filesystem()
    for source in layers:
        changes = read_layer(
            source, limit=limit, seen=seen, below=filesystem.found.keys(), wanted=wanted
        )
        filesystem.apply(changes)
    return list(filesystem.packages())
