"""Consistency checks (``cargohold fsck``); garbage collection is in ``gc.py``.

The metadata store is the source of truth. fsck compares it with the blob store:

* a blob recorded but missing (or of the wrong size) in storage: clients would get
  errors; ``--repair`` forgets the record and its links, so pushes upload it again;
* a manifest referring to a blob or child the repository no longer has;
* bytes in storage with no record (left by a crash between commit and record):
  invisible, ``--repair`` deletes them once older than the GC grace period;
* upload sessions without bytes, and upload bytes without a session;
* blob deletions interrupted by a crash of their owner (tombstones whose lease ran out):
  ``--repair`` completes them.

Every byte deletion goes through a tombstone (``tombstones.py``), as GC's do: a repair
while the server runs never deletes bytes a push has just committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from cargohold.metadata.store import Tombstone
from cargohold.oci.digest import Digest
from cargohold.registry.services import Services
from cargohold.registry.tombstones import complete_stale, delete_fenced, stale
from cargohold.storage.base import BlobNotFound

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Report:
    missing_blobs: list[str] = field(default_factory=list)
    wrong_size: list[str] = field(default_factory=list)
    dangling_references: list[tuple[str, str, str]] = field(default_factory=list)
    orphan_blobs: list[str] = field(default_factory=list)
    orphan_uploads: list[str] = field(default_factory=list)
    sessions_without_bytes: list[str] = field(default_factory=list)
    interrupted_deletions: list[Tombstone] = field(default_factory=list)
    repaired: int = 0

    @property
    def unrepaired(self) -> int:
        """Problems ``--repair`` cannot fix: manifests whose content is gone."""
        return len(self.dangling_references)

    @property
    def problems(self) -> int:
        return (
            len(self.missing_blobs)
            + len(self.wrong_size)
            + len(self.dangling_references)
            + len(self.orphan_blobs)
            + len(self.orphan_uploads)
            + len(self.sessions_without_bytes)
            + len(self.interrupted_deletions)
        )


async def fsck(
    services: Services,
    *,
    repair: bool,
    grace_seconds: float,
    clock: Callable[[], float] = time.time,
) -> Report:
    report = Report()
    records = await services.meta.blobs.all_records()
    known = await services.meta.garbage.known()  # pending and deleting rows too
    stored: dict[str, float] = {}
    async for found, mtime in services.store.iter_digests():
        stored[str(found)] = mtime
    await _check_blobs(services, report, records, stored)
    cutoff = clock() - grace_seconds
    report.orphan_blobs = [
        d for d, m in stored.items() if d not in known and m < cutoff
    ]
    report.dangling_references = await services.meta.manifests.dangling()
    report.interrupted_deletions = [
        stone
        for stone in await services.meta.garbage.tombstones()
        if stale(stone, clock())
    ]
    await _check_uploads(services, report, cutoff)
    if repair:
        await _repair(services, report, clock)
    return report


async def _check_blobs(
    services: Services,
    report: Report,
    records: dict[str, int],
    stored: dict[str, float],
) -> None:
    """Record blobs missing from storage or of the wrong size there."""
    for digest, size in records.items():
        if digest not in stored:
            report.missing_blobs.append(digest)
            continue
        try:
            info = await services.store.stat(Digest.parse(digest))
        except BlobNotFound:
            report.missing_blobs.append(digest)
            continue
        if info.size != size:
            report.wrong_size.append(digest)


async def _check_uploads(services: Services, report: Report, cutoff: float) -> None:
    """Record sessions without bytes, and upload bytes older than ``cutoff``."""
    upload_files = {uid: mtime async for uid, mtime in services.store.iter_uploads()}
    sessions = await services.meta.uploads.older_than(float("inf"))
    session_ids = {s.id for s in sessions}
    report.sessions_without_bytes = sorted(session_ids - set(upload_files))
    report.orphan_uploads = sorted(
        uid for uid, m in upload_files.items() if uid not in session_ids and m < cutoff
    )


async def _repair(
    services: Services, report: Report, clock: Callable[[], float]
) -> None:
    """Fix what ``report`` found that can be fixed, and count it."""
    meta, store = services.meta, services.store
    broken = report.missing_blobs + report.wrong_size
    if broken:
        await delete_fenced(meta, store, await meta.blobs.forget(broken, clock()))
    orphans = await meta.garbage.mark_orphans(report.orphan_blobs, clock())
    await delete_fenced(meta, store, orphans, clock=clock)
    await complete_stale(meta, store, report.interrupted_deletions, clock=clock)
    for upload_id in report.orphan_uploads:
        await services.store.abort(upload_id)
    for upload_id in report.sessions_without_bytes:
        await services.meta.uploads.delete(upload_id)
    report.repaired = (
        len(broken)
        + len(report.orphan_blobs)
        + len(report.orphan_uploads)
        + len(report.sessions_without_bytes)
        + len(report.interrupted_deletions)
    )
    # Forgetting a broken blob can leave manifests that need it: those cannot be
    # repaired here (the bytes are gone), only pushed again; report them as left.
    report.dangling_references = await services.meta.manifests.dangling()
