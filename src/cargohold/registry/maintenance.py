"""Consistency checks (``cargohold fsck``) and garbage collection (``cargohold gc``).

The metadata store is the source of truth. fsck compares it with the blob store:

* a blob recorded but missing (or of the wrong size) in storage: clients would get
  errors; ``--repair`` forgets the record and its links, so pushes upload it again;
* a manifest referring to a blob or child the repository no longer has;
* bytes in storage with no record (left by a crash between commit and record):
  invisible, ``--repair`` deletes them once older than the GC grace period;
* upload sessions without bytes, and upload bytes without a session.

GC deletes blobs that no repository links and no manifest references, and idle uploads.
Only bytes older than the grace period are deleted, so a push that has written its bytes
but not yet recorded them is never undone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog

from cargohold.oci.digest import Digest
from cargohold.registry.services import Services
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
        )


async def fsck(services: Services, *, repair: bool, grace_seconds: float) -> Report:
    report = Report()
    records = await services.meta.blobs.all_records()
    stored: dict[str, float] = {}
    async for found, mtime in services.store.iter_digests():
        stored[str(found)] = mtime
    await _check_blobs(services, report, records, stored)
    cutoff = time.time() - grace_seconds
    report.orphan_blobs = [
        d for d, m in stored.items() if d not in records and m < cutoff
    ]
    report.dangling_references = await services.meta.manifests.dangling()
    await _check_uploads(services, report, cutoff)
    if repair:
        await _repair(services, report)
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


async def _repair(services: Services, report: Report) -> None:
    """Fix what ``report`` found that can be fixed, and count it."""
    broken = report.missing_blobs + report.wrong_size
    if broken:
        await services.meta.blobs.forget(broken)
        for digest in report.wrong_size:
            await services.store.delete(Digest.parse(digest))
    for digest in report.orphan_blobs:
        await services.store.delete(Digest.parse(digest))
    for upload_id in report.orphan_uploads:
        await services.store.abort(upload_id)
    for upload_id in report.sessions_without_bytes:
        await services.meta.uploads.delete(upload_id)
    report.repaired = (
        len(broken)
        + len(report.orphan_blobs)
        + len(report.orphan_uploads)
        + len(report.sessions_without_bytes)
    )
    # Forgetting a broken blob can leave manifests that need it: those cannot be
    # repaired here (the bytes are gone), only pushed again; report them as left.
    report.dangling_references = await services.meta.manifests.dangling()


@dataclass(slots=True)
class GcResult:
    blobs_deleted: int = 0
    bytes_freed: int = 0
    uploads_expired: int = 0


async def collect_garbage(
    services: Services, *, grace_seconds: float, upload_ttl_seconds: float
) -> GcResult:
    result = GcResult()
    now = time.time()
    result.uploads_expired = await services.uploads.expire(now - upload_ttl_seconds)
    records = await services.meta.blobs.all_records()
    candidates: list[tuple[str, float]] = []
    async for found, mtime in services.store.iter_digests():
        if mtime < now - grace_seconds:
            candidates.append((str(found), mtime))
    for start in range(0, len(candidates), 500):
        batch = [d for d, _ in candidates[start : start + 500]]
        for digest in await services.meta.blobs.forget_unreferenced(batch):
            result.blobs_deleted += 1
            result.bytes_freed += records.get(digest, 0)
            await services.store.delete(Digest.parse(digest))
            log.info("deleted unused blob", digest=digest)
    return result
