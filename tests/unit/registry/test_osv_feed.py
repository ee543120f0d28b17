"""Reading an OSV feed from a directory, a zip and a tar (files in ``tmp_path``)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from typing import TYPE_CHECKING

import pytest

from cargohold.registry import osv_feed
from cargohold.registry.osv_feed import FeedInvalid, read_feed

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

DOCS = {
    "PyPI/PYSEC-1.json": {"id": "PYSEC-1", "modified": "2026-01-01T00:00:00Z"},
    "npm/GHSA-1.json": {"id": "GHSA-1", "modified": "2026-01-02T00:00:00Z"},
}
BAD = {"id": "BAD-1"}  # no ``modified``


def files(docs: Mapping[str, object]) -> dict[str, bytes]:
    found = {name: json.dumps(doc).encode() for name, doc in docs.items()}
    found["README.txt"] = b"not a document"
    return found


def as_directory(tmp_path: Path, content: dict[str, bytes]) -> Path:
    root = tmp_path / "feed"
    for name, data in content.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def as_zip(tmp_path: Path, content: dict[str, bytes]) -> Path:
    path = tmp_path / "feed.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    return path


def as_tar(tmp_path: Path, content: dict[str, bytes]) -> Path:
    path = tmp_path / "feed.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in content.items():
            info = tarfile.TarInfo(f"osv/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


MAKERS = [as_directory, as_zip, as_tar]


@pytest.mark.parametrize("make", MAKERS)
def test_every_json_document_is_read(make: object, tmp_path: Path) -> None:
    assert callable(make)
    path = make(tmp_path, files(DOCS))
    assert sorted(e.id for e in read_feed(path)) == ["GHSA-1", "PYSEC-1"]


@pytest.mark.parametrize("make", MAKERS)
def test_a_bad_document_is_named(make: object, tmp_path: Path) -> None:
    assert callable(make)
    path = make(tmp_path, files({**DOCS, "PyPI/PYSEC-9.json": BAD}))
    with pytest.raises(FeedInvalid, match=r"PyPI/PYSEC-9\.json: modified must be"):
        list(read_feed(path))


@pytest.mark.parametrize("make", MAKERS)
def test_a_document_that_is_not_json_is_named(make: object, tmp_path: Path) -> None:
    assert callable(make)
    path = make(tmp_path, {"x/broken.json": b"{not json"})
    with pytest.raises(FeedInvalid, match=r"x/broken\.json: not JSON"):
        list(read_feed(path))


def test_a_single_json_file_is_a_feed(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(DOCS["PyPI/PYSEC-1.json"]))
    assert [e.id for e in read_feed(path)] == ["PYSEC-1"]


def test_an_oversized_document_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(osv_feed, "MAX_DOCUMENT_BYTES", 10)
    for make in MAKERS:
        (tmp_path / make.__name__).mkdir()
        path = make(tmp_path / make.__name__, files(DOCS))
        with pytest.raises(FeedInvalid, match="larger than 10 bytes"):
            list(read_feed(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"plain text", "not a directory, zip, tar or JSON file"),
        (b"PK\x03\x04 truncated zip", "not a directory, zip, tar or JSON file"),
    ],
)
def test_what_is_not_a_feed_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "feed.bin"
    path.write_bytes(content)
    with pytest.raises(FeedInvalid, match=message):
        list(read_feed(path))


def test_a_missing_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FeedInvalid, match="no such file or directory"):
        list(read_feed(tmp_path / "nowhere"))


def test_a_truncated_tar_is_refused(tmp_path: Path) -> None:
    whole = as_tar(tmp_path, files(DOCS)).read_bytes()
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FeedInvalid, match="cannot be read"):
        list(read_feed(path))
