"""What only ``S3BlobStore`` promises, beyond the shared ``BlobStore`` contract.

Two store objects on one bucket stand for two replicas: an upload's state lives in the
bucket, so either may continue it. Parts are 5 MiB (S3's minimum) so that a few MiB
cross part boundaries; moto, like S3, refuses a multipart upload whose non-final parts
are smaller.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from typing import TYPE_CHECKING

import pytest

from cargohold.oci.digest import Digest
from cargohold.storage.base import BlobNotFound
from cargohold.storage.s3 import MIN_PART, S3BlobStore
from tests.s3server import create_bucket, storage_settings

from .helpers import chunks, collect, new_upload_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

MIB = 1024 * 1024


def _store(endpoint: str, bucket: str, **extra: object) -> S3BlobStore:
    table = storage_settings(endpoint, bucket, part_size=MIN_PART, **extra)
    table.pop("backend")
    return S3BlobStore(**table)  # type: ignore[arg-type]


@pytest.fixture
async def replicas(s3_endpoint: str) -> AsyncIterator[tuple[S3BlobStore, S3BlobStore]]:
    bucket = create_bucket(s3_endpoint)
    first, second = _store(s3_endpoint, bucket), _store(s3_endpoint, bucket)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def _segment_sizes(store: S3BlobStore, upload_id: str) -> list[int]:
    return [s.size for s in (await store._upload(upload_id)).segments]


async def test_chunks_alternate_replicas_and_commit_as_multipart(
    replicas: tuple[S3BlobStore, S3BlobStore],
) -> None:
    data = os.urandom(13 * MIB + 7)
    cuts = [0, 3 * MIB, 7 * MIB, 13 * MIB, 13 * MIB + 6, len(data)]
    upload_id = new_upload_id()
    await replicas[0].begin_upload(upload_id)
    for index, (start, end) in enumerate(itertools.pairwise(cuts)):
        store = replicas[index % 2]
        assert await store.upload_size(upload_id) == start
        assert (
            await store.append(upload_id, start, chunks(data[start:end]), None) == end
        )
        sizes = await _segment_sizes(replicas[1 - index % 2], upload_id)
        # Every segment but the last is a valid non-final part.
        assert all(size >= MIN_PART for size in sizes[:-1]), sizes
    assert await collect(replicas[0].read_upload(upload_id, end=len(data))) == data
    digest = Digest.of(data)
    await replicas[1].commit(upload_id, digest, size=len(data))
    assert await collect(replicas[0].open(digest)) == data
    assert (
        await collect(replicas[0].open(digest, start=6 * MIB, end=6 * MIB + 9))
        == (data[6 * MIB : 6 * MIB + 9])
    )
    assert [u async for u, _ in replicas[0].iter_uploads()] == []


async def test_commit_cuts_a_multipart_blob_inside_its_last_part(
    replicas: tuple[S3BlobStore, S3BlobStore],
) -> None:
    store = replicas[0]
    data = os.urandom(12 * MIB)
    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    await store.append(upload_id, 0, chunks(data), None)
    assert await _segment_sizes(store, upload_id) == [5 * MIB, 5 * MIB, 2 * MIB]
    kept = data[: 11 * MIB]
    await store.commit(upload_id, Digest.of(kept), size=len(kept))
    assert await collect(store.open(Digest.of(kept))) == kept


async def test_append_cuts_back_inside_a_full_segment(
    replicas: tuple[S3BlobStore, S3BlobStore],
) -> None:
    first, second = replicas
    data = os.urandom(12 * MIB)
    upload_id = new_upload_id()
    await first.begin_upload(upload_id)
    await first.append(upload_id, 0, chunks(data), None)
    # Another replica resumes from 7 MiB (say its size record says so).
    again = os.urandom(MIB)
    hasher = hashlib.sha256()
    size = await second.append(upload_id, 7 * MIB, chunks(again), hasher)
    expected = data[: 7 * MIB] + again
    assert size == len(expected) == await first.upload_size(upload_id)
    assert await collect(first.read_upload(upload_id, end=size)) == expected
    assert hasher.digest() == hashlib.sha256(again).digest()


async def test_a_crashed_writes_leftovers_are_not_part_of_the_upload(
    replicas: tuple[S3BlobStore, S3BlobStore],
) -> None:
    store = replicas[0]
    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    await store.append(upload_id, 0, chunks(b"abc"), None)
    # A segment past a gap, as a write killed between two puts could leave behind.
    await store._put(store._segment_key(upload_id, 10), b"stray")
    assert await store.upload_size(upload_id) == 3
    assert await store.append(upload_id, 3, chunks(b"def"), None) == 6
    assert await collect(store.read_upload(upload_id, end=100)) == b"abcdef"
    keys = [k async for k in store._list(store._upload_prefix(upload_id))]
    assert len(keys) == 2  # the marker and one segment: the stray one is gone


async def test_segments_left_without_a_marker_are_listed_for_gc(
    replicas: tuple[S3BlobStore, S3BlobStore],
) -> None:
    store = replicas[0]
    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    await store.append(upload_id, 0, chunks(b"abc"), None)
    # A crash after commit deleted the marker but before the segments went.
    s3 = await store._s3()
    prefix = store._upload_prefix(upload_id)
    await s3.delete_object(Bucket=store._bucket, Key=f"{prefix}started")
    with pytest.raises(BlobNotFound):
        await store.upload_size(upload_id)
    assert [u async for u, _ in store.iter_uploads()] == [upload_id]
    await store.abort(upload_id)
    assert [u async for u, _ in store.iter_uploads()] == []


async def test_no_redirect_without_the_setting(s3_endpoint: str) -> None:
    store = _store(s3_endpoint, create_bucket(s3_endpoint), redirect=False)
    try:
        assert await store.redirect_url(Digest.of(b"x")) is None
    finally:
        await store.close()


async def test_check_fails_with_oserror_on_a_missing_bucket(s3_endpoint: str) -> None:
    store = _store(s3_endpoint, "no-such-bucket-here")
    try:
        with pytest.raises(OSError, match="no-such-bucket-here"):
            await store.check()
    finally:
        await store.close()


async def test_a_prefix_keeps_stores_apart(s3_endpoint: str) -> None:
    bucket = create_bucket(s3_endpoint)
    one = _store(s3_endpoint, bucket, prefix="one")
    two = _store(s3_endpoint, bucket, prefix="two/")
    try:
        upload_id = new_upload_id()
        await one.begin_upload(upload_id)
        await one.append(upload_id, 0, chunks(b"one"), None)
        await one.commit(upload_id, Digest.of(b"one"), size=3)
        assert [d async for d, _ in two.iter_digests()] == []
        assert [d async for d, _ in one.iter_digests()] == [Digest.of(b"one")]
        keys = [item["Key"] async for item in one._list("")]
        assert all(key.startswith("one/blobs/") for key in keys), keys
    finally:
        await one.close()
        await two.close()
