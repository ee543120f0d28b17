"""``registry.tombstones``: byte deletion under a lease, with an injected clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.oci.digest import Digest
from cargohold.registry.tombstones import (
    LEASE_SECONDS,
    complete_stale,
    delete_fenced,
)
from cargohold.storage.base import BlobNotFound
from cargohold.storage.memory import MemoryBlobStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from cargohold.metadata.store import Tombstone


class Clock:
    """Wall time that advances ``step`` seconds at every reading."""

    def __init__(self, start: float, step: float) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
async def meta(tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    upgrade(db)
    store = SqlMetadataStore(db)
    yield store
    await store.close()


async def orphans(
    meta: SqlMetadataStore, store: MemoryBlobStore, count: int, lease: float
) -> list[Tombstone]:
    """``count`` blobs in ``store`` with no record, marked for deletion at ``lease``."""
    digests = []
    for n in range(count):
        data = b"orphan %d" % n
        upload_id = f"{n:032x}"
        await store.begin_upload(upload_id)
        await store.append(upload_id, 0, _body(data), None)
        digest = Digest.of(data)
        await store.commit(upload_id, digest, size=len(data))
        digests.append(str(digest))
    return await meta.garbage.mark_orphans(digests, lease)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def stored(store: MemoryBlobStore) -> int:
    return len([d async for d, _ in store.iter_digests()])


async def test_a_slow_owner_renews_its_leases(meta: SqlMetadataStore) -> None:
    store = MemoryBlobStore()
    stones = await orphans(meta, store, 30, lease=1000.0)
    clock = Clock(1000.0, step=5.0)  # every file deletion "takes" seconds
    deleted = await delete_fenced(meta, store, stones, clock=clock)
    assert deleted.blobs == 30
    assert await stored(store) == 0
    assert await meta.garbage.tombstones() == []
    assert clock.now - 1000.0 > LEASE_SECONDS  # it outlived its first lease


async def test_an_owner_whose_lease_was_taken_leaves_it(
    meta: SqlMetadataStore,
) -> None:
    store = MemoryBlobStore()
    [stone] = await orphans(meta, store, 1, lease=1000.0)
    [taken] = await meta.garbage.take_over([stone], 1100.0)
    # The old owner wakes up late: it must not touch what is no longer its own.
    late = await delete_fenced(meta, store, [stone], clock=Clock(1040.0, step=0.0))
    assert late.blobs == 0
    assert await stored(store) == 1
    assert await meta.garbage.tombstones() == [taken]


async def test_complete_stale_takes_only_expired_leases(
    meta: SqlMetadataStore,
) -> None:
    store = MemoryBlobStore()
    old = await orphans(meta, store, 2, lease=1000.0)
    now = 1000.0 + LEASE_SECONDS + 1
    fresh = await meta.garbage.take_over(old[1:], now - 1)  # its owner is alive
    done = await complete_stale(
        meta, store, old[:1] + fresh, clock=Clock(now, step=0.0)
    )
    assert done.blobs == 1
    assert await meta.garbage.tombstones() == fresh
    with pytest.raises(BlobNotFound):
        await store.stat(Digest.parse(old[0].digest))
