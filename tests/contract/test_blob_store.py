"""The ``BlobStore`` contract (``cargohold.storage.base``), over every implementation.

Each test runs once per store in the ``blob_store`` fixture. A test here states what any
``BlobStore`` promises; what only the filesystem store promises (its key layout, fsync,
surviving a restart) lives in ``test_filesystem_blob_store.py``.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from cargohold.oci.digest import Digest
from cargohold.storage.base import BlobNotFound

from .helpers import (
    TRAVERSAL,
    chunks,
    collect,
    failing,
    new_upload_id,
    put_blob,
    snapshot,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from cargohold.storage.base import BlobStore

MISSING = Digest.of(b"never stored")
DATA = bytes(range(256)) * 4  # 1 KiB, every byte value, no two adjacent bytes equal


# --- stat and open --------------------------------------------------------------------


async def test_missing_blob(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await blob_store.stat(MISSING)
    stream = blob_store.open(MISSING)  # lazy: the error comes on first iteration
    with pytest.raises(BlobNotFound):
        await collect(stream)


async def test_stat(blob_store: BlobStore) -> None:
    digest = await put_blob(blob_store, DATA)
    info = await blob_store.stat(digest)
    assert info.size == len(DATA)
    if info.local is not None:  # a store may offer a local file to serve directly
        with info.local.open() as handle:
            assert handle.read() == DATA
        assert info.local.stat.st_size == len(DATA)


async def test_empty_blob(blob_store: BlobStore) -> None:
    digest = await put_blob(blob_store, b"")
    assert (await blob_store.stat(digest)).size == 0
    assert await collect(blob_store.open(digest)) == b""


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, len(DATA)),
        (10, None),
        (10, 20),
        (0, 1),
        (len(DATA) - 1, len(DATA)),
        (5, 5),
        (len(DATA), None),
        (1000, 5000),  # an end past the blob stops at its end
    ],
)
async def test_open_range(blob_store: BlobStore, start: int, end: int | None) -> None:
    digest = await put_blob(blob_store, DATA)
    assert (
        await collect(blob_store.open(digest, start=start, end=end)) == DATA[start:end]
    )


async def test_open_streams_large_blobs_across_read_chunks(
    blob_store: BlobStore,
) -> None:
    mib = 1024 * 1024
    data = os.urandom(2 * mib + mib // 2)
    digest = await put_blob(blob_store, data)
    for start, end in [
        (0, None),
        (mib - 3, mib + 3),
        (1, 2 * mib + 5),
        (2 * mib + 7, None),
    ]:
        assert (
            await collect(blob_store.open(digest, start=start, end=end))
            == data[start:end]
        )


async def test_redirect_url_is_none_or_serves_the_blob(blob_store: BlobStore) -> None:
    digest = await put_blob(blob_store, DATA)
    url = await blob_store.redirect_url(digest)
    if url is None:
        return
    assert url.startswith(("https://", "http://"))
    async with httpx.AsyncClient() as client:  # no credentials: the URL carries them
        whole = await client.get(url)
        assert (whole.status_code, whole.content) == (200, DATA)
        part = await client.get(url, headers={"Range": "bytes=10-19"})
        assert (part.status_code, part.content) == (206, DATA[10:20])


# --- uploads --------------------------------------------------------------------------


async def test_begin_upload_creates_an_empty_upload(blob_store: BlobStore) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    assert await collect(blob_store.read_upload(upload_id, end=100)) == b""
    assert upload_id in [u async for u, _ in blob_store.iter_uploads()]


async def test_upload_size(blob_store: BlobStore) -> None:
    upload_id = new_upload_id()
    with pytest.raises(BlobNotFound):
        await blob_store.upload_size(upload_id)
    await blob_store.begin_upload(upload_id)
    assert await blob_store.upload_size(upload_id) == 0
    await blob_store.append(upload_id, 0, chunks(b"12345"), None)
    assert await blob_store.upload_size(upload_id) == 5
    await blob_store.commit(upload_id, Digest.of(b"12345"), size=5)
    with pytest.raises(BlobNotFound):
        await blob_store.upload_size(upload_id)


async def test_append_returns_the_new_size(blob_store: BlobStore) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    assert await blob_store.append(upload_id, 0, chunks(b"hello", b" "), None) == 6
    assert await blob_store.append(upload_id, 6, chunks(b"world"), None) == 11
    assert await blob_store.append(upload_id, 11, chunks(), None) == 11
    assert await blob_store.append(upload_id, 11, chunks(b"", b"!", b""), None) == 12
    assert await collect(blob_store.read_upload(upload_id, end=12)) == b"hello world!"


@pytest.mark.parametrize(
    ("offset", "chunk", "expected"),
    [
        (10, b"XY", b"0123456789XY"),  # where the caller believes the upload stands
        (4, b"XY", b"0123XY"),  # bytes beyond the offset are discarded first
        (4, b"", b"0123"),
        (0, b"XY", b"XY"),
        (0, b"", b""),
    ],
)
async def test_append_at_offset_discards_bytes_beyond_it(
    blob_store: BlobStore, offset: int, chunk: bytes, expected: bytes
) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.append(upload_id, 0, chunks(b"0123456789"), None)
    assert await blob_store.append(upload_id, offset, chunks(chunk), None) == len(
        expected
    )
    assert await collect(blob_store.read_upload(upload_id, end=100)) == expected


async def test_append_feeds_the_hasher_in_order(blob_store: BlobStore) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    hasher = hashlib.sha256()
    await blob_store.append(upload_id, 0, chunks(b"a", b"bc"), hasher)
    await blob_store.append(upload_id, 3, chunks(b"def"), hasher)
    assert hasher.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


async def test_append_to_a_missing_upload(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await blob_store.append(new_upload_id(), 0, chunks(b"x"), None)


@pytest.mark.parametrize("offset", [0, 3])
async def test_a_body_that_raises_rolls_back_to_the_offset(
    blob_store: BlobStore, offset: int
) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.append(upload_id, 0, chunks(b"abc"), None)
    error = ConnectionResetError("client went away")
    with pytest.raises(ConnectionResetError):
        await blob_store.append(
            upload_id, offset, failing(b"12", b"34", error=error), None
        )
    assert await collect(blob_store.read_upload(upload_id, end=100)) == b"abc"[:offset]
    # the upload is still usable from the offset it was cut back to
    assert await blob_store.append(upload_id, offset, chunks(b"Z"), None) == offset + 1


async def test_a_cancelled_body_rolls_back_to_the_offset(blob_store: BlobStore) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.append(upload_id, 0, chunks(b"abc"), None)

    async def stalls() -> AsyncIterator[bytes]:
        yield b"partial"
        scope.cancel()
        await anyio.sleep_forever()
        yield b"never"  # pragma: no cover

    with anyio.CancelScope() as scope:
        await blob_store.append(upload_id, 3, stalls(), None)
    assert scope.cancelled_caught
    assert await collect(blob_store.read_upload(upload_id, end=100)) == b"abc"


@pytest.mark.parametrize(
    ("end", "expected"), [(0, b""), (3, b"abc"), (6, b"abcdef"), (99, b"abcdef")]
)
async def test_read_upload_streams_a_prefix(
    blob_store: BlobStore, end: int, expected: bytes
) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.append(upload_id, 0, chunks(b"abc", b"def"), None)
    assert await collect(blob_store.read_upload(upload_id, end=end)) == expected


async def test_read_upload_of_a_missing_upload(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await collect(blob_store.read_upload(new_upload_id(), end=10))


async def test_uploads_are_independent(blob_store: BlobStore) -> None:
    first, second = new_upload_id(), new_upload_id()
    await blob_store.begin_upload(first)
    await blob_store.begin_upload(second)
    await blob_store.append(first, 0, chunks(b"first"), None)
    await blob_store.append(second, 0, chunks(b"second"), None)
    assert await collect(blob_store.read_upload(first, end=100)) == b"first"
    assert await collect(blob_store.read_upload(second, end=100)) == b"second"


# --- commit ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_commit_turns_the_upload_into_the_blob(
    blob_store: BlobStore, algorithm: str
) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.append(upload_id, 0, chunks(DATA[:100], DATA[100:]), None)
    digest = Digest.of(DATA, algorithm)
    await blob_store.commit(upload_id, digest, size=len(DATA))

    assert (await blob_store.stat(digest)).size == len(DATA)
    assert await collect(blob_store.open(digest)) == DATA
    assert upload_id not in [u async for u, _ in blob_store.iter_uploads()]
    with pytest.raises(BlobNotFound):
        await blob_store.append(upload_id, len(DATA), chunks(b"x"), None)
    with pytest.raises(BlobNotFound):
        await collect(blob_store.read_upload(upload_id, end=1))


async def test_commit_takes_the_first_size_bytes(blob_store: BlobStore) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.append(upload_id, 0, chunks(b"keep", b"-leftover"), None)
    digest = Digest.of(b"keep")
    await blob_store.commit(upload_id, digest, size=4)
    assert await collect(blob_store.open(digest)) == b"keep"


async def test_committing_existing_content_is_not_an_error(
    blob_store: BlobStore,
) -> None:
    digest = await put_blob(blob_store, DATA)
    again = new_upload_id()
    await blob_store.begin_upload(again)
    await blob_store.append(again, 0, chunks(DATA), None)
    await blob_store.commit(again, digest, size=len(DATA))

    assert await collect(blob_store.open(digest)) == DATA
    assert [d async for d, _ in blob_store.iter_digests()] == [digest]
    assert [u async for u, _ in blob_store.iter_uploads()] == []


async def test_commit_of_a_missing_upload(blob_store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await blob_store.commit(new_upload_id(), Digest.of(b""), size=0)


async def test_commit_twice_fails_the_second_time(blob_store: BlobStore) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.commit(upload_id, Digest.of(b""), size=0)
    with pytest.raises(BlobNotFound):
        await blob_store.commit(upload_id, Digest.of(b""), size=0)


# --- abort and delete -----------------------------------------------------------------


async def test_abort(blob_store: BlobStore) -> None:
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.append(upload_id, 0, chunks(b"abc"), None)
    await blob_store.abort(upload_id)
    assert [u async for u, _ in blob_store.iter_uploads()] == []
    with pytest.raises(BlobNotFound):
        await blob_store.append(upload_id, 0, chunks(b"x"), None)
    await blob_store.abort(upload_id)  # a missing upload is not an error
    await blob_store.abort(new_upload_id())


async def test_abort_leaves_blobs_alone(blob_store: BlobStore) -> None:
    digest = await put_blob(blob_store, DATA)
    await blob_store.abort(new_upload_id())
    assert await collect(blob_store.open(digest)) == DATA


async def test_delete(blob_store: BlobStore) -> None:
    kept = await put_blob(blob_store, b"kept")
    deleted = await put_blob(blob_store, b"deleted")
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)

    await blob_store.delete(deleted)
    with pytest.raises(BlobNotFound):
        await blob_store.stat(deleted)
    with pytest.raises(BlobNotFound):
        await collect(blob_store.open(deleted))
    assert [d async for d, _ in blob_store.iter_digests()] == [kept]
    assert [u async for u, _ in blob_store.iter_uploads()] == [upload_id]
    await blob_store.delete(deleted)  # a missing blob is not an error
    await blob_store.delete(MISSING)


async def test_a_deleted_blob_can_be_stored_again(blob_store: BlobStore) -> None:
    digest = await put_blob(blob_store, DATA)
    await blob_store.delete(digest)
    assert await put_blob(blob_store, DATA) == digest
    assert await collect(blob_store.open(digest)) == DATA


# --- listing --------------------------------------------------------------------------


async def test_an_empty_store_lists_nothing(blob_store: BlobStore) -> None:
    assert [d async for d in blob_store.iter_digests()] == []
    assert [u async for u in blob_store.iter_uploads()] == []


async def test_iter_digests(blob_store: BlobStore) -> None:
    before = time.time()
    digests = {
        await put_blob(blob_store, b"a"),
        await put_blob(blob_store, b"b"),
        await put_blob(blob_store, b"a", "sha512"),
    }
    pending = new_upload_id()
    await blob_store.begin_upload(pending)  # an upload is not a blob
    listed = [(d, mtime) async for d, mtime in blob_store.iter_digests()]
    assert {d for d, _ in listed} == digests
    assert len(listed) == len(digests)
    for _, mtime in listed:
        assert before - 2 <= mtime <= time.time() + 2


async def test_iter_uploads(blob_store: BlobStore) -> None:
    before = time.time()
    ids = {new_upload_id() for _ in range(3)}
    for upload_id in ids:
        await blob_store.begin_upload(upload_id)
    await put_blob(blob_store, b"committed")  # its upload is gone
    listed = [(u, mtime) async for u, mtime in blob_store.iter_uploads()]
    assert {u for u, _ in listed} == ids
    assert len(listed) == len(ids)
    for _, mtime in listed:
        assert before - 2 <= mtime <= time.time() + 2


# --- upload ids are opaque, never paths -----------------------------------------------


@pytest.fixture
def victims(tmp_path: Path, store_root: Path) -> Path:
    """Files a traversal would reach, inside and outside the store's root."""
    (tmp_path / "victim").write_bytes(b"outside the root")
    (tmp_path / "x").write_bytes(b"outside the root")
    store_root.mkdir(exist_ok=True)
    (store_root / "x").write_bytes(b"inside the root, outside uploads")
    return tmp_path


@pytest.mark.parametrize("upload_id", [*TRAVERSAL, "ABSOLUTE"])
async def test_traversal_ids_name_no_upload(
    blob_store: BlobStore, victims: Path, upload_id: str
) -> None:
    if upload_id == "ABSOLUTE":
        upload_id = str(victims / "victim")
    before = snapshot(victims)

    with pytest.raises(BlobNotFound):
        await blob_store.append(upload_id, 0, chunks(b"pwned"), None)
    with pytest.raises(BlobNotFound):
        await collect(blob_store.read_upload(upload_id, end=100))
    with pytest.raises(BlobNotFound):
        await blob_store.commit(upload_id, Digest.of(b"pwned"), size=5)
    await blob_store.abort(upload_id)

    assert snapshot(victims) == before
    assert [d async for d in blob_store.iter_digests()] == []


# --- free space -----------------------------------------------------------------------


async def test_free_bytes_is_unknown_or_a_count(blob_store: BlobStore) -> None:
    free = await blob_store.free_bytes()
    assert free is None or (isinstance(free, int) and free >= 0)


async def test_check_passes_and_leaves_nothing(blob_store: BlobStore) -> None:
    await blob_store.check()
    assert [u async for u in blob_store.iter_uploads()] == []
    assert [d async for d in blob_store.iter_digests()] == []
