"""``FilesystemBlobStore``: blobs as files under one data directory.

Key layout (the only place it is written down)::

    <root>/blobs/<algorithm>/<first two hex>/<hex>     committed, immutable
    <root>/uploads/<upload id>                          append-only until commit

A blob appears under its digest only by ``rename`` of a fully written, fsynced upload,
and the directory is fsynced after the rename, so a crash leaves either no blob or the
whole blob. Upload ids are checked against a strict pattern, so no request can name a
path outside the root.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid
from cargohold.storage.base import BlobInfo, BlobNotFound, LocalFile

if TYPE_CHECKING:
    from hashlib import _Hash

_UPLOAD_ID = re.compile(r"^[a-f0-9]{32}$")
_READ_CHUNK = 1024 * 1024
# Body pieces below _GATHER_BELOW are gathered into _BATCH-byte writes (see _Batcher);
# at most _SPARE_BUFFERS idle batch buffers are kept for the next uploads.
_GATHER_BELOW = 256 * 1024
_BATCH = 1024 * 1024
_SPARE_BUFFERS = 8


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_parts(fd: int, parts: list[memoryview], hasher: _Hash | None) -> None:
    # hashlib and os.writev release the GIL: the event loop keeps serving meanwhile.
    if hasher is not None:
        for part in parts:
            hasher.update(part)
    views = [part for part in parts if part]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views:
            views[0] = views[0][written:]


class _BufferPool:
    """Idle ``_BATCH``-byte buffers, kept so that batches reuse touched pages."""

    def __init__(self) -> None:
        self._spare: list[memoryview] = []

    def take(self) -> memoryview:
        return self._spare.pop() if self._spare else memoryview(bytearray(_BATCH))

    def give(self, buffer: memoryview) -> None:
        if len(self._spare) < _SPARE_BUFFERS:
            self._spare.append(buffer)


class _Batcher:
    """Turns a request body's messages into few, large writes in a worker thread.

    Servers hand over a body in the pieces the client sent: containers/image (skopeo,
    podman, buildah) streams layers in 32 KiB pieces, many of them 4 KiB when chunked.
    A thread hop, a hash call and a write per piece cost more than the bytes, so small
    pieces are copied into one reused buffer (no fresh pages per batch) and written with
    one hash+write per ``_BATCH`` bytes. Pieces of ``_GATHER_BELOW`` or more go through
    uncopied: copying them would cost more than the hop it saves.
    """

    def __init__(
        self,
        fd: int,
        hasher: _Hash | None,
        limiter: anyio.CapacityLimiter,
        pool: _BufferPool,
    ) -> None:
        self._fd = fd
        self._hasher = hasher
        self._limiter = limiter
        self._pool = pool
        self._buffer: memoryview | None = None
        self._filled = 0

    async def add(self, chunk: bytes) -> None:
        if len(chunk) >= _GATHER_BELOW:
            await self._write([*self._pending(), memoryview(chunk)])
            return
        if self._buffer is None:
            self._buffer = self._pool.take()
        view = memoryview(chunk)
        while view:
            taken = min(_BATCH - self._filled, len(view))
            self._buffer[self._filled : self._filled + taken] = view[:taken]
            self._filled += taken
            view = view[taken:]
            if self._filled == _BATCH:
                await self._write(self._pending())

    async def flush(self) -> None:
        if self._filled:
            await self._write(self._pending())

    def _pending(self) -> list[memoryview]:
        if self._buffer is None or not self._filled:
            return []
        return [self._buffer[: self._filled]]

    async def _write(self, parts: list[memoryview]) -> None:
        self._filled = 0
        await anyio.to_thread.run_sync(
            _write_parts, self._fd, parts, self._hasher, limiter=self._limiter
        )

    def close(self) -> None:
        if self._buffer is not None:
            self._pool.give(self._buffer)
            self._buffer = None


class FilesystemBlobStore:
    """A ``BlobStore`` on a local (or network) filesystem."""

    def __init__(self, root: Path, *, io_threads: int = 8) -> None:
        self.root = root
        self._blobs = root / "blobs"
        self._uploads = root / "uploads"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)
        # Upload hashing gets its own limiter so it cannot starve blob downloads.
        self._limiter = anyio.CapacityLimiter(io_threads)
        self._buffers = _BufferPool()

    def blob_path(self, digest: Digest) -> Path:
        return self._blobs / digest.algorithm / digest.hex[:2] / digest.hex

    def _upload_path(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise BlobNotFound(upload_id)
        return self._uploads / upload_id

    async def stat(self, digest: Digest) -> BlobInfo:
        path = self.blob_path(digest)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise BlobNotFound(str(digest)) from None
        return BlobInfo(size=stat.st_size, local=LocalFile(path, stat))

    async def open(
        self, digest: Digest, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            handle = await anyio.open_file(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(str(digest)) from None
        async with handle:
            await handle.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                want = _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
                chunk = await handle.read(want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def redirect_url(self, digest: Digest) -> str | None:  # noqa: ARG002
        return None

    async def begin_upload(self, upload_id: str) -> None:
        self._upload_path(upload_id).touch(exist_ok=False)

    async def check(self) -> None:
        await anyio.to_thread.run_sync(self._check_sync)

    def _check_sync(self) -> None:
        if not self._blobs.is_dir():
            raise NotADirectoryError(f"{self._blobs} is not a directory")
        next(self._blobs.iterdir(), None)  # readable
        probe = self._uploads / f".ready-{os.getpid()}-{uuid.uuid4().hex}"
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            probe.unlink()

    async def free_bytes(self) -> int | None:
        try:
            stats = os.statvfs(self._uploads)
        except OSError:
            return None
        # f_bavail: what an unprivileged writer may still use (root's reserve excluded).
        return stats.f_bavail * stats.f_frsize

    async def append(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterable[bytes],
        hasher: _Hash | None,
    ) -> int:
        path = self._upload_path(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            raise BlobNotFound(upload_id) from None
        size = offset
        batcher = _Batcher(fd, hasher, self._limiter, self._buffers)
        try:
            if os.fstat(fd).st_size != offset:  # bytes of an interrupted write
                os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            async for chunk in body:
                if chunk:
                    await batcher.add(chunk)
                    size += len(chunk)
            await batcher.flush()
        except BaseException:
            # Gathered bytes not yet written are dropped with the rest of the chunk.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, offset)
            raise
        finally:
            batcher.close()
            os.close(fd)
        return size

    async def upload_size(self, upload_id: str) -> int:
        try:
            return self._upload_path(upload_id).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(upload_id) from None

    async def read_upload(self, upload_id: str, *, end: int) -> AsyncIterator[bytes]:
        path = self._upload_path(upload_id)
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(upload_id) from None
        async with handle:
            remaining = end
            while remaining > 0:
                chunk = await handle.read(min(_READ_CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    async def commit(self, upload_id: str, digest: Digest, *, size: int) -> None:
        source = self._upload_path(upload_id)
        target = self.blob_path(digest)
        await anyio.to_thread.run_sync(self._commit_sync, source, target, size)

    @staticmethod
    def _commit_sync(source: Path, target: Path, size: int) -> None:
        try:
            fd = os.open(source, os.O_RDWR)
        except FileNotFoundError:
            raise BlobNotFound(source.name) from None
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
        if target.exists():
            # Same content is already stored: keep it, refresh its age for the GC grace.
            os.utime(target)
            source.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
        _fsync_dir(target.parent)

    async def abort(self, upload_id: str) -> None:
        with contextlib.suppress(BlobNotFound):
            self._upload_path(upload_id).unlink(missing_ok=True)

    async def delete(self, digest: Digest) -> None:
        self.blob_path(digest).unlink(missing_ok=True)

    async def iter_digests(self) -> AsyncIterator[tuple[Digest, float]]:
        for algorithm in Digest.SUPPORTED:
            base = self._blobs / algorithm
            if not base.is_dir():
                continue
            for prefix in sorted(base.iterdir()):
                if not prefix.is_dir():
                    continue  # a stray file is not a prefix directory
                for path in sorted(prefix.iterdir()):
                    try:
                        digest = Digest.parse(f"{algorithm}:{path.name}")
                        mtime = path.stat().st_mtime
                    except (DigestInvalid, OSError):
                        continue  # a stray file is not a blob
                    yield digest, mtime

    async def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        for path in sorted(self._uploads.iterdir()):
            if _UPLOAD_ID.fullmatch(path.name):
                with contextlib.suppress(OSError):
                    yield path.name, path.stat().st_mtime

    async def close(self) -> None:
        return  # nothing held open between calls
