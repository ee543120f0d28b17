"""Online garbage collection (``cargohold gc``), safe while servers push and pull.

Mark and sweep over the metadata store, with a grace period ``G``:

1. Tombstones left by a collector that died (lease run out) are completed.
2. Upload sessions idle for the upload TTL are deleted with their bytes.
3. With ``delete_untagged``: manifests no tag reaches (directly, through an index, or as
   a referrer of reached content) and untouched for ``G`` are deleted.
4. A repository's blob link is live while a manifest there references it or it was
   touched (upload, mount, manifest PUT) within ``G``; dead links are dropped.
5. Blobs nothing links, references or claims (an upload committing it), untouched for
   ``G``, become tombstones; their bytes are deleted, then their rows.
6. Bytes in storage with no row at all, older than ``G`` (a crash between commit and
   record), get a tombstone if none exists, and go the same way.

Every decision is re-checked by the store under row locks against the rows the pushing
side updates (see ``metadata/sql_gc.py``), and every byte deletion is fenced by a
tombstone (``registry/tombstones.py``): a push never has its bytes deleted after being
acknowledged. What a push can see is ``MANIFEST_BLOB_UNKNOWN`` for a blob it uploaded
longer than ``G`` ago whose link GC dropped; it uploads the blob again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import structlog

from cargohold.registry.tombstones import complete_stale, delete_fenced
from cargohold.storage.base import BlobNotFound

if TYPE_CHECKING:
    from cargohold.registry.services import Services

log = structlog.get_logger(__name__)

_BATCH = 200


@dataclass(slots=True)
class GcResult:
    dry_run: bool = False
    blobs_deleted: int = 0
    bytes_freed: int = 0
    links_dropped: int = 0
    manifests_removed: int = 0
    uploads_expired: int = 0
    # Bytes a collection with no grace period (and --delete-untagged if given) would
    # free now: after a real run, what is left for later runs.
    reclaimable_bytes: int = 0
    # What a dry run would delete: (repository, digest) links, (repository, digest)
    # manifests, (digest, size) blobs.
    links: list[tuple[str, str]] = field(default_factory=list)
    manifests: list[tuple[str, str]] = field(default_factory=list)
    blobs: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GcOptions:
    grace_seconds: float
    upload_ttl_seconds: float
    delete_untagged: bool = False
    dry_run: bool = False


async def collect_garbage(
    services: Services,
    options: GcOptions,
    *,
    clock: Callable[[], float] = time.time,
) -> GcResult:
    now = clock()
    cutoff = now - options.grace_seconds
    if options.dry_run:
        return await _dry_run(services, options, cutoff, now)
    result = GcResult()
    meta = services.meta
    stale = await complete_stale(
        meta, services.store, await meta.garbage.tombstones(), clock=clock
    )
    result.blobs_deleted += stale.blobs
    result.bytes_freed += stale.bytes
    result.uploads_expired = await services.uploads.expire(
        now - options.upload_ttl_seconds
    )
    if options.delete_untagged:
        result.manifests_removed = await _delete_untagged(services, cutoff)
    links = await meta.garbage.dead_links(cutoff)
    for start in range(0, len(links), _BATCH):
        dropped = await meta.garbage.drop_links(links[start : start + _BATCH], cutoff)
        result.links_dropped += len(dropped)
    log.info("gc: links swept", dropped=result.links_dropped, candidates=len(links))
    await _sweep_blobs(services, result, cutoff, clock)
    await _sweep_orphans(services, result, cutoff, clock)
    collectable = await meta.garbage.collectable(
        clock(), untagged=options.delete_untagged
    )
    result.reclaimable_bytes = sum(collectable.values())
    if services.instruments is not None:
        await services.instruments.record_gc(
            finished_at=clock(),
            blobs_deleted=result.blobs_deleted,
            bytes_freed=result.bytes_freed,
        )
    return result


async def _delete_untagged(services: Services, cutoff: float) -> int:
    garbage = services.meta.garbage
    by_repository: dict[str, list[str]] = defaultdict(list)
    for repository, digest, _ in await garbage.unreachable_manifests(cutoff):
        by_repository[repository].append(digest)
    removed = 0
    for repository, digests in sorted(by_repository.items()):
        for start in range(0, len(digests), _BATCH):
            batch = digests[start : start + _BATCH]
            gone = await garbage.delete_unreachable(repository, batch, cutoff)
            removed += len(gone)
            for digest in gone:
                log.info(
                    "gc: deleted untagged manifest",
                    repository=repository,
                    digest=digest,
                )
    return removed


async def _sweep_blobs(
    services: Services, result: GcResult, cutoff: float, clock: Callable[[], float]
) -> None:
    meta = services.meta
    candidates = sorted(await meta.garbage.unused_blobs(cutoff))
    for start in range(0, len(candidates), _BATCH):
        batch = candidates[start : start + _BATCH]
        marked = await meta.garbage.mark_unused(batch, cutoff, clock())
        deleted = await delete_fenced(meta, services.store, marked, clock=clock)
        result.blobs_deleted += deleted.blobs
        result.bytes_freed += deleted.bytes
        log.info(
            "gc: blobs swept",
            done=min(start + _BATCH, len(candidates)),
            candidates=len(candidates),
            deleted=result.blobs_deleted,
            bytes_freed=result.bytes_freed,
        )


async def _orphans(services: Services, cutoff: float) -> dict[str, int]:
    """Bytes in storage older than ``cutoff`` with no row, and their sizes."""
    known = await services.meta.garbage.known()
    found: dict[str, int] = {}
    async for digest, mtime in services.store.iter_digests():
        if mtime < cutoff and str(digest) not in known:
            try:
                found[str(digest)] = (await services.store.stat(digest)).size
            except BlobNotFound:
                continue
    return found


async def _sweep_orphans(
    services: Services, result: GcResult, cutoff: float, clock: Callable[[], float]
) -> None:
    orphans = await _orphans(services, cutoff)
    digests = sorted(orphans)
    for start in range(0, len(digests), _BATCH):
        marked = await services.meta.garbage.mark_orphans(
            digests[start : start + _BATCH], clock()
        )
        sized = [replace(stone, size=orphans[stone.digest]) for stone in marked]
        deleted = await delete_fenced(services.meta, services.store, sized, clock=clock)
        result.blobs_deleted += deleted.blobs
        result.bytes_freed += deleted.bytes
    if orphans:
        log.info("gc: orphan bytes swept", count=len(orphans))


async def _dry_run(
    services: Services, options: GcOptions, cutoff: float, now: float
) -> GcResult:
    """What a run would delete now; nothing is written."""
    garbage = services.meta.garbage
    result = GcResult(dry_run=True)
    expiring = await services.meta.uploads.older_than(now - options.upload_ttl_seconds)
    result.uploads_expired = len(expiring)
    if options.delete_untagged:
        unreachable = await garbage.unreachable_manifests(cutoff)
        result.manifests = [
            (repository, digest) for repository, digest, _ in unreachable
        ]
        result.manifests_removed = len(result.manifests)
    result.links = await garbage.dead_links(cutoff)
    result.links_dropped = len(result.links)
    blobs = await garbage.collectable(cutoff, untagged=options.delete_untagged)
    blobs.update(await _orphans(services, cutoff))
    result.blobs = sorted(blobs.items())
    result.blobs_deleted = len(blobs)
    result.bytes_freed = sum(blobs.values())
    reclaimable = await garbage.collectable(now, untagged=options.delete_untagged)
    reclaimable.update(await _orphans(services, now))
    result.reclaimable_bytes = sum(reclaimable.values())
    return result
