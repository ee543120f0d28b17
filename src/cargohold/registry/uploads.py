"""``UploadService``: blob upload sessions (spec.md, "Pushing blobs").

Sessions are metadata rows, bytes live in the blob store's upload area. A running
SHA-256 is kept in memory per session between requests; when it is missing (after a
restart, on another replica, or for sha512) the digest is computed by re-reading the
upload.

A chunk lands whole or not at all: if the body ends early or has the wrong length, the
store cuts the upload back and the session keeps its previous size, so the client can
ask for the status and resume.

A chunk that would take the upload past ``max_blob_bytes``, or that is larger than the
free space of the upload area, is refused before a byte of it is read; a body of unknown
length is cut off when it passes the limit.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import time
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from cargohold.auth.policy import PUSH
from cargohold.metadata.store import MetadataStore, UploadRecord
from cargohold.oci.digest import Digest
from cargohold.oci.errors import (
    BlobTooLarge,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
)
from cargohold.oci.names import RepositoryName
from cargohold.oci.ranges import parse_content_range, upload_progress_headers
from cargohold.registry.limits import RepositoryAccess
from cargohold.registry.tombstones import complete_stale, stale
from cargohold.storage.base import BlobNotFound, BlobStore

if TYPE_CHECKING:
    from hashlib import _Hash

log = structlog.get_logger(__name__)

# How often a push waiting for GC to finish deleting the same content looks again.
_TOMBSTONE_POLL_SECONDS = 0.05


@dataclass(slots=True)
class _RunningHash:
    size: int
    hasher: _Hash


class _LengthChecked:
    """Counts a body's bytes and refuses more than the declared ``Content-Length``.

    Without one, refuses more than ``room`` (``None``: unbounded).
    """

    def __init__(
        self, body: AsyncIterable[bytes], expected: int | None, room: int | None
    ) -> None:
        self._body = body
        self.expected = expected
        self.received = 0
        # One bound per chunk: a declared length was already checked against the room.
        self._bound = expected if expected is not None else room

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            self.received += len(chunk)
            if self._bound is not None and self.received > self._bound:
                if self.expected is None:
                    raise BlobTooLarge(f"body passes the {self._bound} bytes left")
                raise SizeInvalid("body longer than Content-Length")
            yield chunk

    def check(self) -> None:
        if self.expected is not None and self.received != self.expected:
            raise SizeInvalid(
                f"received {self.received} bytes, Content-Length said {self.expected}"
            )


def _chunk_length(
    record: UploadRecord, content_range: str, content_length: int | None
) -> int:
    """The length of a chunk sent with ``Content-Range``, if it can be applied."""
    progress = upload_progress_headers(record.repository, record.id, record.size)
    try:
        start, end = parse_content_range(content_range)
    except RangeInvalid as exc:
        raise RangeInvalid(exc.detail, headers=progress) from None
    if start != record.size:
        raise RangeInvalid(
            f"chunk starts at {start}, upload holds {record.size} bytes",
            headers=progress,
        )
    expected = end - start + 1
    if content_length is not None and content_length != expected:
        raise RangeInvalid(
            "Content-Range and Content-Length disagree", headers=progress
        )
    return expected


class UploadService:
    def __init__(
        self, meta: MetadataStore, store: BlobStore, *, max_blob_bytes: int = 0
    ) -> None:
        self._meta = meta
        self._store = store
        self._max_blob_bytes = max_blob_bytes  # 0: no limit
        self._hashes: dict[str, _RunningHash] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = self._locks[upload_id] = asyncio.Lock()
        return lock

    async def start(self, access: RepositoryAccess) -> UploadRecord:
        repo = access.require(PUSH)
        upload_id = uuid.uuid4().hex
        await self._store.begin_upload(upload_id)
        await self._meta.uploads.create(upload_id, repo.value)
        self._hashes[upload_id] = _RunningHash(0, hashlib.sha256())
        now = time.time()
        return UploadRecord(upload_id, repo.value, 0, now, now)

    async def upload(
        self,
        access: RepositoryAccess,
        digest: Digest,
        body: AsyncIterable[bytes],
        *,
        content_length: int | None,
    ) -> int:
        """A whole blob in one request (``POST ?digest=``); returns its size.

        The session exists only for this request: if the body is refused, cut short or
        hashes to something else, nothing of it is left.
        """
        access.require(PUSH)
        await self._room(0, content_length)
        record = await self.start(access)
        try:
            return await self.finish(
                access, record.id, digest, body, content_length=content_length
            )
        except Exception:
            await self._discard(record.id)
            raise

    async def _room(self, offset: int, length: int | None) -> int | None:
        """How many more bytes an upload holding ``offset`` may take (``None``: any).

        Raises ``BlobTooLarge`` at once if a declared ``length`` does not fit.
        """
        room = None
        if self._max_blob_bytes > 0:
            room = max(self._max_blob_bytes - offset, 0)
            if length is not None and length > room:
                raise BlobTooLarge(
                    f"the upload would hold {offset + length} bytes; "
                    f"the limit is {self._max_blob_bytes}"
                )
        if length:
            free = await self._store.free_bytes()
            if free is not None and length > free:
                raise BlobTooLarge(f"no room for {length} more bytes in storage")
        return room

    async def _session(self, repo: RepositoryName, upload_id: str) -> UploadRecord:
        record = await self._meta.uploads.get(upload_id)
        if record is None or record.repository != repo.value:
            raise BlobUploadUnknown(upload_id[:64])
        return record

    async def status(self, access: RepositoryAccess, upload_id: str) -> UploadRecord:
        """The session, if its bytes are still there to continue from.

        A crash between moving finished bytes to their content address and recording the
        blob leaves a session without bytes: it cannot grow any more, so it is unknown
        (a retried ``PUT ?digest=`` still completes it, see ``finish``).
        """
        repo = access.require(PUSH)
        record = await self._session(repo, upload_id)
        try:
            await self._store.upload_size(upload_id)
        except BlobNotFound:
            raise BlobUploadUnknown(upload_id[:64]) from None
        return record

    async def append(
        self,
        access: RepositoryAccess,
        upload_id: str,
        body: AsyncIterable[bytes],
        *,
        content_range: str | None,
        content_length: int | None,
    ) -> int:
        """Append a chunk; returns the new size.

        ``content_range`` is the chunk's ``<start>-<end>``, parsed here so that every
        416 (malformed, out of order, or disagreeing with ``content_length``) carries
        the session's progress. Raises ``RangeInvalid``.
        """
        async with self._lock(upload_id):
            record = await self.status(access, upload_id)
            if content_range is not None:
                content_length = _chunk_length(record, content_range, content_length)
            return await self._write(record, body, content_length)

    async def finish(
        self,
        access: RepositoryAccess,
        upload_id: str,
        digest: Digest,
        body: AsyncIterable[bytes] | None,
        *,
        content_length: int | None,
        content_range: str | None = None,
    ) -> int:
        """Write the last chunk (if any), verify ``digest`` and commit.

        A last chunk sent with ``Content-Range`` must start where the upload stands,
        as a ``PATCH`` must (``RangeInvalid`` with the progress otherwise; the session
        is kept). Returns the size.
        """
        repo = access.require(PUSH)
        async with self._lock(upload_id):
            record = await self._session(repo, upload_id)
            if await self._committed_before_crash(record, digest):
                return record.size
            if body is not None and content_range is not None:
                content_length = _chunk_length(record, content_range, content_length)
            size = record.size
            if body is not None and content_length != 0:
                size = await self._write(record, body, content_length)
            actual = await self._digest(upload_id, size, digest.algorithm)
            if actual != digest.hex:
                await self._discard(upload_id)
                raise DigestInvalid(f"content hashes to {digest.algorithm}:{actual}")
            await self._claim(upload_id, digest, size)
            try:
                await self._store.commit(upload_id, digest, size=size)
            except BlobNotFound:
                raise BlobUploadUnknown(upload_id) from None
            await self._record(upload_id, repo.value, digest, size)
            self._hashes.pop(upload_id, None)
            return size

    async def _claim(self, upload_id: str, digest: Digest, size: int) -> None:
        """Fence ``digest`` against GC before its bytes are committed (see gc.py).

        A tombstone means GC is deleting that content right now: wait until it is
        done, or, if its owner died, complete the deletion here; then claim afresh.
        """
        while True:
            stone = await self._meta.uploads.claim(upload_id, str(digest), size)
            if stone is None:
                return
            if stale(stone, time.time()):
                await complete_stale(self._meta, self._store, [stone])
            else:
                await asyncio.sleep(_TOMBSTONE_POLL_SECONDS)

    async def _record(
        self, upload_id: str, repository: str, digest: Digest, size: int
    ) -> None:
        if not await self._meta.uploads.finish(
            upload_id, repository, str(digest), size
        ):
            # GC took the content after the session expired: nothing is acknowledged.
            raise BlobUploadUnknown(upload_id)

    async def _committed_before_crash(
        self, record: UploadRecord, digest: Digest
    ) -> bool:
        """Finish a session whose bytes were committed as ``digest`` before a crash."""
        try:
            await self._store.upload_size(record.id)
        except BlobNotFound:
            pass
        else:
            return False
        try:
            info = await self._store.stat(digest)
        except BlobNotFound:
            raise BlobUploadUnknown(record.id) from None
        if info.size != record.size:
            raise BlobUploadUnknown(record.id)
        log.info("completing an upload committed before a restart", upload=record.id)
        await self._record(record.id, record.repository, digest, info.size)
        return True

    async def cancel(self, access: RepositoryAccess, upload_id: str) -> None:
        repo = access.require(PUSH)
        async with self._lock(upload_id):
            await self._session(repo, upload_id)
            await self._discard(upload_id)

    async def expire(self, older_than: float) -> int:
        """Delete sessions idle since ``older_than``; returns how many."""
        stale = await self._meta.uploads.older_than(older_than)
        for record in stale:
            await self._discard(record.id)
        return len(stale)

    async def _discard(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)
        await self._meta.uploads.delete(upload_id)
        await self._store.abort(upload_id)

    async def _write(
        self,
        record: UploadRecord,
        body: AsyncIterable[bytes],
        content_length: int | None,
    ) -> int:
        room = await self._room(record.size, content_length)
        running = self._hashes.pop(record.id, None)
        hasher = running.hasher if running and running.size == record.size else None
        checked = _LengthChecked(body, content_length, room)
        try:
            size = await self._store.append(record.id, record.size, checked, hasher)
        except BlobNotFound:
            raise BlobUploadUnknown(record.id) from None
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise BlobTooLarge("storage is full") from None
        checked.check()
        if not await self._meta.uploads.set_size(
            record.id, expected=record.size, size=size
        ):
            raise BlobUploadInvalid(
                "upload changed concurrently; query its status and retry"
            )
        if hasher is not None:
            self._hashes[record.id] = _RunningHash(size, hasher)
        return size

    async def _digest(self, upload_id: str, size: int, algorithm: str) -> str:
        running = self._hashes.get(upload_id)
        if running and running.size == size and running.hasher.name == algorithm:
            return running.hasher.hexdigest()
        hasher = hashlib.new(algorithm)
        try:
            async for chunk in self._store.read_upload(upload_id, end=size):
                hasher.update(chunk)
        except BlobNotFound:
            raise BlobUploadUnknown(upload_id) from None
        return hasher.hexdigest()
