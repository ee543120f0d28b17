"""Deleting a blob's bytes, fenced through the metadata store.

Bytes are deleted only by the owner of the blob's tombstone (its row in state
``deleting``), and only within the owner's lease: the row's ``touched_at`` is the time
the owner took it. The owner deletes the bytes, then drops the row on condition that it
still holds the same lease. Whoever finds a tombstone older than ``LEASE_SECONDS`` (its
owner died: ``kill -9`` of ``cargohold gc``) takes it over by moving the lease forward
(compare and set), and completes it. So at most one process at a time may delete a
blob's bytes, and no one re-uses a digest (an upload commits its bytes, a mount links
them) until the tombstone is gone.

Leases use wall-clock time across processes: the clocks of hosts sharing one registry
must agree to well within ``LEASE_SECONDS``. An owner renews its leases after a quarter
of that, so a collector slower than a lease only loses its batch, never deletes bytes it
no longer owns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from cargohold.metadata.store import MetadataStore, Tombstone
from cargohold.oci.digest import Digest
from cargohold.storage.base import BlobStore

log = structlog.get_logger(__name__)

LEASE_SECONDS = 60.0
_DROP_BATCH = 20


@dataclass(slots=True)
class Deleted:
    blobs: int = 0
    bytes: int = 0


def stale(stone: Tombstone, now: float) -> bool:
    """Its owner's lease ran out: anyone may take it over and complete it."""
    return now - stone.lease > LEASE_SECONDS


async def delete_fenced(
    meta: MetadataStore,
    store: BlobStore,
    stones: list[Tombstone],
    *,
    clock: Callable[[], float] = time.time,
) -> Deleted:
    """Delete the bytes of tombstones this process owns, then drop the rows.

    Renews the leases it still holds when a quarter of the lease has passed; one it no
    longer holds (taken over) is left to its new owner.
    """
    done = Deleted()
    pending = list(stones)
    while pending:
        # Leases count from when they were taken, as recorded in the store.
        if clock() - min(stone.lease for stone in pending) > LEASE_SECONDS / 4:
            pending = await meta.garbage.take_over(pending, clock())
            continue
        batch: list[Tombstone] = []
        for stone in pending[:_DROP_BATCH]:
            if clock() - stone.lease > LEASE_SECONDS / 2:
                break  # renew before deleting more
            await store.delete(Digest.parse(stone.digest))
            batch.append(stone)
        pending = pending[len(batch) :]
        # Only rows still under our lease go; a taken-over one is its new owner's.
        dropped = await meta.garbage.drop(batch) if batch else []
        done.blobs += len(dropped)
        done.bytes += sum(stone.size for stone in dropped)
    return done


async def complete_stale(
    meta: MetadataStore,
    store: BlobStore,
    stones: list[Tombstone],
    *,
    clock: Callable[[], float] = time.time,
) -> Deleted:
    """Take over the tombstones whose owner died and complete them."""
    now = clock()
    orphaned = [s for s in stones if stale(s, now)]
    if not orphaned:
        return Deleted()
    taken = await meta.garbage.take_over(orphaned, now)
    if taken:
        log.info("completing interrupted blob deletions", count=len(taken))
    return await delete_fenced(meta, store, taken, clock=clock)
