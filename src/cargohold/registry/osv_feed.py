"""Reading an offline OSV feed: a directory, a zip, or a tar (plain, gzip, xz, bz2).

Every ``*.json`` file (at any depth) is one OSV document; other files are ignored.
Reading is blocking file work: callers run ``read_feed`` in a worker thread. Memory is
bounded by one document at a time (``MAX_DOCUMENT_BYTES``); the archive is only read,
never extracted, so a hostile entry name cannot write anywhere.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cargohold.registry.osv import OsvEntry, OsvInvalid, parse_osv

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024


class FeedInvalid(ValueError):
    """The feed cannot be read, or one of its documents is not valid OSV.

    The message names the file (``path`` is it, relative to the feed) and the rule.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _read_bounded(stream: IO[bytes], name: str) -> bytes:
    data = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise FeedInvalid(name, f"larger than {MAX_DOCUMENT_BYTES} bytes")
    return data


def _entry(name: str, data: bytes) -> OsvEntry:
    try:
        loaded = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FeedInvalid(name, f"not JSON ({e})") from e
    try:
        return parse_osv(loaded)
    except OsvInvalid as e:
        raise FeedInvalid(name, str(e)) from e


def _directory(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*.json")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as stream:
                yield str(path.relative_to(root)), _read_bounded(stream, str(path))


def _zip(path: Path) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            if info.file_size > MAX_DOCUMENT_BYTES:
                raise FeedInvalid(
                    info.filename, f"larger than {MAX_DOCUMENT_BYTES} bytes"
                )
            with archive.open(info) as stream:
                yield info.filename, _read_bounded(stream, info.filename)


def _tar(path: Path) -> Iterator[tuple[str, bytes]]:
    # Streaming mode ("r|*"): one pass, no index of the whole archive in memory.
    with tarfile.open(path, "r|*") as archive:
        for member in archive:
            if not member.isfile() or not member.name.endswith(".json"):
                continue
            stream = archive.extractfile(member)
            if stream is None:
                continue
            yield member.name, _read_bounded(stream, member.name)


def _single(path: Path) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as stream:
        yield path.name, _read_bounded(stream, path.name)


def _documents(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        return _directory(path)
    if not path.is_file():
        raise FeedInvalid(str(path), "no such file or directory")
    if zipfile.is_zipfile(path):
        return _zip(path)
    if tarfile.is_tarfile(path):
        return _tar(path)
    if path.name.endswith(".json"):
        return _single(path)
    raise FeedInvalid(
        str(path), "not a directory, zip, tar or JSON file of OSV documents"
    )


def read_feed(path: Path) -> Iterator[OsvEntry]:
    """Every document of the feed at ``path``, checked, in the feed's order.

    Raises:
        FeedInvalid: at the first file that is not readable, not JSON or not OSV.
    """
    try:
        for name, data in _documents(path):
            yield _entry(name, data)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise FeedInvalid(str(path), f"cannot be read ({e})") from e
