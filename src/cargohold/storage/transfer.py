"""Copy committed blobs between ``BlobStore``s (``cargohold migrate-storage``).

Only the ``BlobStore`` protocol is used, so any pair of backends works (filesystem → S3
is the usual one). The source is only read (``iter_digests``, ``stat``, ``open``).

For each blob:

1. If the destination has it and the journal says an earlier run verified it with the
   same size, it is skipped (``--recheck`` reads it back anyway).
2. If the destination has it otherwise, it is read back and hashed: the right digest
   and size count as copied, anything else is deleted and copied again.
3. Copying streams the source through an upload of the destination, hashing the bytes
   on the way (a source blob whose bytes do not match its digest is reported, never
   copied), commits it, then **reads it back from the destination and hashes it**:
   only a digest and size equal to the source's count.
4. A verified blob is appended to the journal, a text file beside the destination's
   data (``digest size`` per line), so a second run costs one ``stat`` per blob. The
   journal is only an optimisation: a lost tail means re-reading, never a wrong skip
   of a blob that is missing or of another size.

At most ``concurrency`` blobs are in flight; the digests are streamed from the source
(or from the metadata) through a bounded queue, so memory does not grow with the store
except for the journal's set of verified digests (~150 bytes per blob).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self, TextIO

import structlog

from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid
from cargohold.storage.base import BlobNotFound

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from cargohold.storage.base import BlobStore

log = structlog.get_logger("cargohold.migrate")

_PROGRESS_EVERY = 5.0  # seconds between progress lines


@dataclass(slots=True)
class StorageTransferResult:
    copied: int = 0  # written to the destination by this run, verified
    present: int = 0  # already at the destination, verified by reading it back
    skipped: int = 0  # verified by an earlier run (journal), size checked
    replaced: int = 0  # found wrong at the destination, deleted and copied again
    vanished: int = 0  # listed by the source store, gone before it was read (gc)
    bytes_copied: int = 0
    bytes_verified: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (digest, reason)
    seconds: float = 0.0

    @property
    def blobs(self) -> int:
        return (
            self.copied + self.present + self.skipped + self.vanished + len(self.failed)
        )


class Journal:
    """The blobs verified at one destination, kept in a text file across runs.

    The first line names the destination; a journal of another destination is set
    aside (renamed ``.old``) rather than trusted.
    """

    def __init__(self, path: Path, destination: str) -> None:
        self.path = path
        self.verified: dict[str, int] = {}
        header = f"# cargohold migrate-storage journal for {destination}\n"
        if path.exists():
            with path.open(encoding="utf-8", errors="replace") as lines:
                first = lines.readline()
                if first == header:
                    self._load(lines)
            if first != header:
                log.warning(
                    "journal of another destination set aside",
                    journal=str(path),
                    found=first.strip(),
                )
                path.replace(path.with_name(path.name + ".old"))
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        self._file: TextIO = path.open("a", encoding="utf-8")
        if new:
            self._file.write(header)
            self._file.flush()

    def _load(self, lines: TextIO) -> None:
        for line in lines:
            digest, _, size = line.strip().partition(" ")
            # A torn last line (killed mid-write) is simply not a record.
            if size.isdigit():
                self.verified[digest] = int(size)

    def size_of(self, digest: Digest) -> int | None:
        return self.verified.get(str(digest))

    def add(self, digest: Digest, size: int) -> None:
        self.verified[str(digest)] = size
        self._file.write(f"{digest} {size}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Mismatch(Exception):
    """Bytes whose digest or size is not what they should be."""


class _Missing(Exception):
    """The source has no such blob (any more)."""


async def _hash(store: BlobStore, digest: Digest) -> tuple[str, int]:
    """Read a blob back whole: its hex digest (of ``digest``'s algorithm) and size."""
    hasher = digest.hasher()
    size = 0
    async for chunk in store.open(digest):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


async def source_digests(store: BlobStore) -> AsyncIterator[Digest]:
    """Every committed blob of ``store``."""
    async for digest, _ in store.iter_digests():
        yield digest


class StorageTransfer:
    """One ``migrate-storage`` run from ``source`` into ``destination``."""

    def __init__(
        self,
        source: BlobStore,
        destination: BlobStore,
        journal: Journal,
        *,
        concurrency: int = 4,
        recheck: bool = False,
        missing_ok: bool = False,
    ) -> None:
        """``missing_ok``: a digest the source no longer has was listed by the store
        itself and deleted since (gc on a live source), not a failure."""
        self.source = source
        self.destination = destination
        self.journal = journal
        self.concurrency = max(1, concurrency)
        self.recheck = recheck
        self.missing_ok = missing_ok
        self.result = StorageTransferResult()
        self._last_note = 0.0

    async def run(self, digests: AsyncIterator[Digest]) -> StorageTransferResult:
        """Copy and verify every blob ``digests`` names; failures are collected."""
        started = self._last_note = time.monotonic()
        log.info("migrating blobs", concurrency=self.concurrency, recheck=self.recheck)
        queue: asyncio.Queue[Digest | None] = asyncio.Queue(self.concurrency * 2)

        async def work() -> None:
            while (digest := await queue.get()) is not None:
                await self._one(digest)

        async with asyncio.TaskGroup() as group:
            workers = [group.create_task(work()) for _ in range(self.concurrency)]
            try:
                async for digest in digests:
                    await queue.put(digest)
            finally:
                for _ in workers:
                    await queue.put(None)
        self.result.seconds = time.monotonic() - started
        self._note_progress(final=True)
        return self.result

    async def _one(self, digest: Digest) -> None:
        try:
            await self._transfer(digest)
        except _Missing:
            if self.missing_ok:
                log.info("blob deleted from the source meanwhile", digest=str(digest))
                self.result.vanished += 1
            else:
                self._fail(digest, "missing from the source")
        except _Mismatch as exc:
            self._fail(digest, str(exc))
        except Exception as exc:  # noqa: BLE001 - any backend error fails this blob only
            self._fail(digest, f"{type(exc).__name__}: {exc}")
        self._note_progress()

    def _fail(self, digest: Digest, reason: str) -> None:
        log.error("blob not migrated", digest=str(digest), reason=reason)
        self.result.failed.append((str(digest), reason))

    async def _transfer(self, digest: Digest) -> None:
        try:
            size = (await self.source.stat(digest)).size
        except BlobNotFound:
            raise _Missing from None
        try:
            present: int | None = (await self.destination.stat(digest)).size
        except BlobNotFound:
            present = None
        if present is not None:
            trusted = present == size and self.journal.size_of(digest) == size
            if trusted and not self.recheck:
                self.result.skipped += 1
                return
            if present == size and await self._verified(digest, size):
                self.result.present += 1
                self.journal.add(digest, size)
                return
            log.warning(
                "destination blob is wrong: copying it again",
                digest=str(digest),
                size=size,
                destination_size=present,
            )
            await self.destination.delete(digest)
            self.result.replaced += 1
        try:
            await self._copy(digest, size)
        except BlobNotFound:  # deleted from the source between stat and read
            raise _Missing from None
        if not await self._verified(digest, size):
            msg = "the destination's copy does not read back as written"
            raise _Mismatch(msg)
        self.result.copied += 1
        self.result.bytes_copied += size
        self.journal.add(digest, size)

    async def _verified(self, digest: Digest, size: int) -> bool:
        """Read the destination's blob back: is it ``digest`` and ``size`` bytes?"""
        try:
            hexdigest, found = await _hash(self.destination, digest)
        except BlobNotFound:
            return False
        self.result.bytes_verified += found
        return (hexdigest, found) == (digest.hex, size)

    async def _copy(self, digest: Digest, size: int) -> None:
        async with self._upload() as upload_id:
            hasher = digest.hasher()
            written = await self.destination.append(
                upload_id, 0, self.source.open(digest), hasher
            )
            if (hasher.hexdigest(), written) != (digest.hex, size):
                msg = (
                    f"the source's bytes do not match the digest ({written} bytes, "
                    f"{digest.algorithm}:{hasher.hexdigest()}): not copied; run "
                    "`cargohold fsck` on the source"
                )
                raise _Mismatch(msg)
            await self.destination.commit(upload_id, digest, size=size)

    @contextlib.asynccontextmanager
    async def _upload(self) -> AsyncIterator[str]:
        """A fresh destination upload, aborted if anything fails before commit."""
        upload_id = uuid.uuid4().hex
        await self.destination.begin_upload(upload_id)
        try:
            yield upload_id
        except BaseException:
            with contextlib.suppress(Exception):
                await self.destination.abort(upload_id)
            raise

    def _note_progress(self, *, final: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_note < _PROGRESS_EVERY and not final:
            return
        self._last_note = now
        result = self.result
        log.info(
            "blobs migrated" if final else "migrating blobs",
            done=result.blobs,
            copied=result.copied,
            present=result.present,
            skipped=result.skipped,
            failed=len(result.failed),
            replaced=result.replaced,
            vanished=result.vanished,
            bytes_copied=result.bytes_copied,
            bytes_verified=result.bytes_verified,
        )


def parse_digest(text: str) -> Digest | None:
    """A stored digest, or ``None`` for a malformed one (left to ``fsck``)."""
    try:
        return Digest.parse(text)
    except DigestInvalid:
        return None
