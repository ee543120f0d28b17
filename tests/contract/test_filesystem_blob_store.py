"""Promises only ``FilesystemBlobStore`` makes: its key layout, durable commits,
state that survives a restart, and a root that no upload id can leave.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import TYPE_CHECKING

import pytest

from cargohold.oci.digest import Digest
from cargohold.storage.base import BlobNotFound
from cargohold.storage.filesystem import FilesystemBlobStore

from .helpers import TRAVERSAL, chunks, collect, new_upload_id, put_blob, snapshot

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def store(root: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(root, io_threads=2)


def test_creates_its_directories(root: Path) -> None:
    FilesystemBlobStore(root)
    assert (root / "blobs").is_dir()
    assert (root / "uploads").is_dir()
    FilesystemBlobStore(root)  # and opens an existing root


async def test_key_layout(store: FilesystemBlobStore, root: Path) -> None:
    digest = await put_blob(store, b"layout")
    expected = root / "blobs" / "sha256" / digest.hex[:2] / digest.hex
    assert store.blob_path(digest) == expected
    assert expected.read_bytes() == b"layout"
    local = (await store.stat(digest)).local
    assert local is not None
    assert local.path == expected

    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    assert (root / "uploads" / upload_id).is_file()


async def test_commit_is_durable(
    store: FilesystemBlobStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[os.stat_result] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.fstat(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    digest = await put_blob(store, b"durable")
    monkeypatch.undo()

    blob = store.blob_path(digest)
    synced_files = {s.st_ino for s in synced if stat.S_ISREG(s.st_mode)}
    synced_dirs = {s.st_ino for s in synced if stat.S_ISDIR(s.st_mode)}
    assert blob.stat().st_ino in synced_files  # the bytes
    assert blob.parent.stat().st_ino in synced_dirs  # the rename

    reopened = FilesystemBlobStore(root)
    assert await collect(reopened.open(digest)) == b"durable"
    assert [u async for u in reopened.iter_uploads()] == []


async def test_uploads_survive_a_restart(
    store: FilesystemBlobStore, root: Path
) -> None:
    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    await store.append(upload_id, 0, chunks(b"half"), None)

    reopened = FilesystemBlobStore(root)
    assert [u async for u, _ in reopened.iter_uploads()] == [upload_id]
    assert await collect(reopened.read_upload(upload_id, end=100)) == b"half"
    assert await reopened.append(upload_id, 4, chunks(b"-done"), None) == 9


async def test_committing_existing_content_refreshes_its_age(
    store: FilesystemBlobStore,
) -> None:
    digest = await put_blob(store, b"old")
    blob = store.blob_path(digest)
    os.utime(blob, (1_000_000, 1_000_000))
    inode = blob.stat().st_ino

    await put_blob(store, b"old")
    assert blob.stat().st_mtime > 1_000_000  # a fresh GC grace period
    assert blob.stat().st_ino == inode  # the stored file was kept, not replaced


async def test_a_failed_append_truncates_the_file(
    store: FilesystemBlobStore, root: Path
) -> None:
    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    await store.append(upload_id, 0, chunks(b"abc"), None)

    async def broken() -> AsyncIterator[bytes]:
        yield b"more"
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        await store.append(upload_id, 3, broken(), None)
    assert (root / "uploads" / upload_id).stat().st_size == 3


class _WriteRecorder:
    """Records the buffers each ``os.write``/``os.writev`` call is handed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[tuple[int, object]]] = []
        real_write, real_writev = os.write, os.writev

        def write(fd: int, data: memoryview) -> int:
            self.calls.append([(len(data), memoryview(data).obj)])
            return real_write(fd, data)

        def writev(fd: int, buffers: list[memoryview]) -> int:
            self.calls.append([(len(b), memoryview(b).obj) for b in buffers])
            return real_writev(fd, buffers)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "writev", writev)


async def test_small_pieces_are_written_in_few_large_writes(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What skopeo and podman send: a body in thousands of small pieces. A write (and a
    # thread hop and a hash call) per piece cost more than the bytes.
    pieces = [os.urandom(1000) for _ in range(2000)]
    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    recorder = _WriteRecorder(monkeypatch)
    hasher = hashlib.sha256()
    size = await store.append(upload_id, 0, chunks(*pieces), hasher)
    monkeypatch.undo()
    assert size == 2_000_000
    assert len(recorder.calls) <= 2, recorder.calls[:10]
    assert await collect(store.read_upload(upload_id, end=size)) == b"".join(pieces)
    assert hasher.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()


async def test_big_pieces_are_written_without_a_copy(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Copying big pieces into batch buffers costs more than the writes it saves.
    big = [os.urandom(400 * 1024) for _ in range(3)]
    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    recorder = _WriteRecorder(monkeypatch)
    await store.append(upload_id, 0, chunks(*big), None)
    monkeypatch.undo()
    written_from = [obj for call in recorder.calls for _, obj in call]
    assert all(any(obj is piece for obj in written_from) for piece in big)


@pytest.mark.parametrize("upload_id", TRAVERSAL)
async def test_begin_upload_refuses_paths(
    store: FilesystemBlobStore, tmp_path: Path, upload_id: str
) -> None:
    (tmp_path / "victim").write_bytes(b"outside the root")
    before = snapshot(tmp_path)
    with pytest.raises(BlobNotFound):
        await store.begin_upload(upload_id)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("upload_id", ["A" * 32, "a" * 31, "a" * 33, "g" * 32, "x"])
async def test_upload_ids_have_the_service_shape(
    store: FilesystemBlobStore, upload_id: str
) -> None:
    with pytest.raises(BlobNotFound):
        await store.begin_upload(upload_id)


async def test_an_upload_id_with_a_trailing_newline_is_refused(
    store: FilesystemBlobStore,
) -> None:
    with pytest.raises(BlobNotFound):
        await store.begin_upload("0" * 32 + "\n")


async def test_stray_files_are_not_listed(
    store: FilesystemBlobStore, root: Path
) -> None:
    digest = await put_blob(store, b"real")
    prefix = store.blob_path(digest).parent
    (prefix / "not-a-digest").write_bytes(b"")
    (prefix / ("A" * 64)).write_bytes(b"")
    (root / "uploads" / "scratch.tmp").write_bytes(b"")
    (root / "blobs" / "md5").mkdir()
    assert [d async for d, _ in store.iter_digests()] == [digest]
    assert [u async for u in store.iter_uploads()] == []


async def test_a_stray_file_beside_the_prefixes_is_not_listed(
    store: FilesystemBlobStore, root: Path
) -> None:
    digest = await put_blob(store, b"real")
    (root / "blobs" / "sha256" / ".DS_Store").write_bytes(b"")
    assert [d async for d, _ in store.iter_digests()] == [digest]


async def test_a_missing_blob_file_is_a_missing_blob(
    store: FilesystemBlobStore,
) -> None:
    digest = await put_blob(store, b"gone")
    store.blob_path(digest).unlink()
    with pytest.raises(BlobNotFound):
        await store.stat(digest)
    with pytest.raises(BlobNotFound):
        await collect(store.open(Digest.of(b"gone")))


async def test_free_bytes_is_what_the_upload_filesystem_has(
    store: FilesystemBlobStore, root: Path
) -> None:
    free = await store.free_bytes()
    stats = os.statvfs(root / "uploads")
    assert free is not None
    assert 0 < free <= stats.f_blocks * stats.f_frsize  # within the filesystem's size


async def test_free_bytes_is_unknown_when_the_upload_area_is_gone(
    store: FilesystemBlobStore, root: Path
) -> None:
    (root / "uploads").rmdir()
    assert await store.free_bytes() is None


async def test_check_fails_when_the_blob_directory_is_gone(
    store: FilesystemBlobStore, root: Path
) -> None:
    await store.check()
    assert list((root / "uploads").iterdir()) == []
    (root / "blobs").rmdir()
    (root / "blobs").write_text("not a directory")
    with pytest.raises(NotADirectoryError):
        await store.check()
