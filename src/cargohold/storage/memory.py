"""``MemoryBlobStore``: a ``BlobStore`` in a dict, for unit tests and throwaway runs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING

from cargohold.storage.base import BlobInfo, BlobNotFound

if TYPE_CHECKING:
    from hashlib import _Hash

    from cargohold.oci.digest import Digest


class MemoryBlobStore:
    def __init__(self) -> None:
        self._blobs: dict[Digest, tuple[bytes, float]] = {}
        self._uploads: dict[str, tuple[bytearray, float]] = {}

    async def stat(self, digest: Digest) -> BlobInfo:
        try:
            return BlobInfo(size=len(self._blobs[digest][0]))
        except KeyError:
            raise BlobNotFound(str(digest)) from None

    async def open(
        self, digest: Digest, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        try:
            data = self._blobs[digest][0]
        except KeyError:
            raise BlobNotFound(str(digest)) from None
        yield data[start:end]

    async def redirect_url(self, digest: Digest) -> str | None:  # noqa: ARG002
        return None

    async def begin_upload(self, upload_id: str) -> None:
        self._uploads[upload_id] = (bytearray(), time.time())

    async def append(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterable[bytes],
        hasher: _Hash | None,
    ) -> int:
        try:
            buffer = self._uploads[upload_id][0]
        except KeyError:
            raise BlobNotFound(upload_id) from None
        del buffer[offset:]
        try:
            async for chunk in body:
                if hasher is not None:
                    hasher.update(chunk)
                buffer.extend(chunk)
        except BaseException:
            del buffer[offset:]
            raise
        self._uploads[upload_id] = (buffer, time.time())
        return len(buffer)

    async def check(self) -> None:
        return  # memory is always there while the process is

    async def free_bytes(self) -> int | None:
        return None  # bounded only by the process's memory

    async def upload_size(self, upload_id: str) -> int:
        try:
            return len(self._uploads[upload_id][0])
        except KeyError:
            raise BlobNotFound(upload_id) from None

    async def read_upload(self, upload_id: str, *, end: int) -> AsyncIterator[bytes]:
        try:
            buffer = self._uploads[upload_id][0]
        except KeyError:
            raise BlobNotFound(upload_id) from None
        yield bytes(buffer[:end])

    async def commit(self, upload_id: str, digest: Digest, *, size: int) -> None:
        try:
            buffer = self._uploads.pop(upload_id)[0]
        except KeyError:
            raise BlobNotFound(upload_id) from None
        self._blobs[digest] = (bytes(buffer[:size]), time.time())

    async def abort(self, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)

    async def delete(self, digest: Digest) -> None:
        self._blobs.pop(digest, None)

    async def iter_digests(self) -> AsyncIterator[tuple[Digest, float]]:
        for digest, (_, mtime) in list(self._blobs.items()):
            yield digest, mtime

    async def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        for upload_id, (_, mtime) in list(self._uploads.items()):
            yield upload_id, mtime

    async def close(self) -> None:
        return  # nothing to release
