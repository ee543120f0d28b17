"""Go build information in an ELF binary, read forward from a stream.

Go (1.18 and later) writes a ``.go.buildinfo`` section: a 32-byte header, 16-byte
aligned, starting with the magic ``\\xff Go buildinf:``, then the pointer size and a
flags byte; with flag 2 ("inline strings") the Go version and the module information
follow as varint-length-prefixed strings (Go's ``debug/buildinfo``). The module
information is ``runtime/debug.BuildInfo``'s text: ``path``, ``mod`` (the main
module), ``dep`` and ``=>`` (a replacement of the line before) lines, tab-separated,
between two 16-byte sentinels.

The section is found by scanning the file for the magic at aligned offsets and
checking the header, without seeking (a tar member is read forward): the same bytes
as a string constant elsewhere in a binary fail the check. Binaries from Go before
1.18 (pointers instead of inline strings) are not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

MAGIC = b"\xff Go buildinf:"
_HEADER = 32
_ALIGN = 16
_FLAG_INLINE = 0x2
_CHUNK = 1 << 20
_INFO_CAP = 1 << 20  # version + module information
MIN_SIZE = 4096
MAX_SIZE = 1 << 30  # scan no more of a file than this


@dataclass(frozen=True, slots=True)
class Module:
    path: str
    version: str
    sum: str | None = None


@dataclass(frozen=True, slots=True)
class BuildInfo:
    go_version: str
    path: str  # the main package's import path
    modules: tuple[Module, ...]  # main module first (if versioned), then deps


def _varint(data: bytes, at: int) -> tuple[int, int] | None:
    value, shift = 0, 0
    while at < len(data) and shift < 64:  # noqa: PLR2004 - uvarint's width
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    return None


def _string(data: bytes, at: int) -> tuple[bytes, int] | None:
    decoded = _varint(data, at)
    if decoded is None:
        return None
    length, at = decoded
    if length > _INFO_CAP or at + length > len(data):
        return None
    return data[at : at + length], at + length


def parse_modinfo(text: str) -> tuple[str, tuple[Module, ...]]:
    """The main package path and modules of ``runtime/debug`` module text."""
    main_path = ""
    modules: list[Module] = []
    for line in text.splitlines():
        fields = line.split("\t")
        match fields:
            case ["path", path, *_]:
                main_path = path
            case ["mod" | "dep", path, version, *rest]:
                modules.append(Module(path, version, rest[0] if rest else None))
            case ["=>", path, version, *rest] if modules:
                # A replacement: the module actually built in is this one.
                modules[-1] = Module(path, version, rest[0] if rest else None)
            case _:
                pass
    return main_path, tuple(modules)


def parse_header(data: bytes) -> BuildInfo | None:
    """Build info from bytes starting at the magic, or None if they are not one."""
    if not data.startswith(MAGIC) or len(data) < _HEADER:
        return None
    pointer_size, flags = data[14], data[15]
    if pointer_size not in (4, 8) or not flags & _FLAG_INLINE:
        return None
    version = _string(data, _HEADER)
    if version is None or not version[0].startswith(b"go"):
        return None
    info = _string(data, version[1])
    if info is None:
        return None
    modinfo = info[0]
    # Sentinels: 16 bytes each side, the last one preceded by a newline.
    if len(modinfo) >= 33 and modinfo[-17:-16] == b"\n":  # noqa: PLR2004
        modinfo = modinfo[16:-16]
    path, modules = parse_modinfo(modinfo.decode("utf-8", errors="replace"))
    return BuildInfo(version[0].decode("ascii", errors="replace"), path, modules)


def read(handle: IO[bytes], size: int) -> BuildInfo | None:
    """Scan an ELF file's bytes (read forward) for its Go build information."""
    head = handle.read(4)
    if head != b"\x7fELF":
        return None
    window = head
    offset = 0  # file offset of window[0]
    read_total = len(head)
    limit = min(size, MAX_SIZE)
    while read_total < limit or window:
        if read_total < limit:
            chunk = handle.read(min(_CHUNK, limit - read_total))
            read_total += len(chunk)
            window += chunk
            if not chunk:
                limit = read_total
        found = _scan(window, offset)
        if found is not None:
            at, aligned = found
            # Enough after the header for the strings, whatever the file holds next.
            while len(window) - at < _HEADER + _INFO_CAP and read_total < limit:
                more = handle.read(min(_CHUNK, limit - read_total))
                if not more:
                    break
                read_total += len(more)
                window += more
            info = parse_header(window[at:])
            if info is not None and aligned:
                return info
            window, offset = window[at + 1 :], offset + at + 1
            continue
        if read_total >= limit:
            return None
        keep = len(MAGIC) - 1
        offset += max(len(window) - keep, 0)
        window = window[-keep:]
    return None


def _scan(window: bytes, offset: int) -> tuple[int, bool] | None:
    at = window.find(MAGIC)
    if at < 0:
        return None
    return at, (offset + at) % _ALIGN == 0
