"""``cargohold.registry.uploads``: room checks, over a store that reports its space."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import pytest

from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.oci.digest import Digest
from cargohold.oci.errors import BlobTooLarge
from cargohold.oci.names import RepositoryName
from cargohold.registry.limits import RepositoryAccess
from cargohold.registry.uploads import UploadService
from cargohold.storage.memory import MemoryBlobStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator
    from hashlib import _Hash
    from pathlib import Path

pytestmark = pytest.mark.anyio
REPO = RepositoryAccess.open(RepositoryName.parse("r"))


class SmallDisk(MemoryBlobStore):
    """A store with ``free`` bytes of room; writing past it fails like a full disk."""

    def __init__(self, free: int) -> None:
        super().__init__()
        self.free = free
        self.reads = 0  # body chunks read
        self.written = 0

    async def free_bytes(self) -> int | None:
        return self.free

    async def append(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterable[bytes],
        hasher: _Hash | None,
    ) -> int:
        async def counted() -> AsyncIterator[bytes]:
            async for chunk in body:
                self.reads += 1
                self.written += len(chunk)
                if self.written > self.free:
                    raise OSError(errno.ENOSPC, "No space left on device")
                yield chunk

        return await super().append(upload_id, offset, counted(), hasher)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture
async def meta(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    database = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    upgrade(database)
    store = SqlMetadataStore(database)
    yield store
    await store.close()


async def test_declared_length_above_free_space_is_refused_unread(
    meta: SqlMetadataStore,
) -> None:
    store = SmallDisk(free=10)
    uploads = UploadService(meta, store)
    record = await uploads.start(REPO)
    with pytest.raises(BlobTooLarge, match="no room for 11 more bytes"):
        await uploads.append(
            REPO, record.id, chunks(b"x" * 11), content_range=None, content_length=11
        )
    assert store.reads == 0
    assert (await uploads.status(REPO, record.id)).size == 0


async def test_a_full_disk_mid_write_is_413_and_rolls_back(
    meta: SqlMetadataStore,
) -> None:
    store = SmallDisk(free=10)
    uploads = UploadService(meta, store)
    record = await uploads.start(REPO)
    size = await uploads.append(
        REPO, record.id, chunks(b"12345"), content_range=None, content_length=None
    )
    assert size == 5
    with pytest.raises(BlobTooLarge, match="storage is full"):
        # No Content-Length: the space check cannot help, the write fails instead.
        await uploads.append(
            REPO, record.id, chunks(b"6789", b"abcd"), content_range=None,
            content_length=None,
        )  # fmt: skip
    assert (await uploads.status(REPO, record.id)).size == 5
    assert await store.upload_size(record.id) == 5


async def test_single_request_upload_refused_before_a_session_exists(
    meta: SqlMetadataStore,
) -> None:
    store = SmallDisk(free=10)
    uploads = UploadService(meta, store, max_blob_bytes=100)
    with pytest.raises(BlobTooLarge):
        await uploads.upload(
            REPO, Digest.of(b"x" * 20), chunks(b"x" * 20), content_length=20
        )
    assert [u async for u in store.iter_uploads()] == []
    with pytest.raises(BlobTooLarge, match="limit is 100"):
        await uploads.upload(REPO, Digest.of(b"x"), chunks(b"x"), content_length=101)
    assert store.reads == 0
