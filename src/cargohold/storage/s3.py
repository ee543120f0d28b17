"""``S3BlobStore``: blobs in an S3-compatible object store, shared by every replica.

Key layout (the only place it is written down), under the configured prefix::

    blobs/<algorithm>/<first two hex>/<hex>        committed, immutable
    uploads/<upload id>/started                    the upload exists (empty marker)
    uploads/<upload id>/data/<start, 20 digits>    the upload's bytes from <start>

**Uploads live in S3, not in a process**, so each ``PATCH`` of a chunked upload may land
on another replica. An upload is a run of *segment* objects named by their start
offset; its size is what a listing of its prefix says. Each request buffers at most
``part_size`` bytes and writes full segments of exactly ``part_size`` as it goes; what
is left at the end of a request is the *tail* segment. S3 lets every part of a multipart
upload but the last be no smaller than 5 MiB, so a tail under 5 MiB is read back by the
next ``append`` and rewritten with the new bytes in front of it (at most 5 MiB read per
request). Every segment but the last is therefore at least 5 MiB, and ``commit`` turns
the segments into the blob with one multipart upload whose parts are server-side copies
(``UploadPartCopy``; a one-segment blob is one ``CopyObject``): no blob byte passes
through cargohold at commit. A segment is only ever replaced by one that starts with
the same bytes, so a crash in the middle of an ``append`` leaves the bytes before its
offset intact; the next ``append`` at that offset discards whatever lies beyond.

Segments are plain objects rather than parts of an open multipart upload because S3
cannot read a part before the upload completes, and the upload service must be able to
re-read an upload to hash it when the running hash is in another process.

The blob becomes visible under its digest only when the copy completes (S3 writes are
atomic per object), after the caller has verified the digest. The upload's marker is
deleted first, then its segments: a crash between them leaves segments without a
marker, which ``iter_uploads`` still lists so that GC removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid
from cargohold.storage.base import BlobInfo, BlobNotFound

if TYPE_CHECKING:
    from hashlib import _Hash

MIB = 1024 * 1024
# S3: every part of a multipart upload but the last is at least 5 MiB; an object at
# most 5 GiB may be copied by one CopyObject.
MIN_PART = 5 * MIB
_MAX_COPY_OBJECT = 5 * 1024 * MIB
_UPLOAD_ID = re.compile(r"^[a-f0-9]{32}$")
_SEGMENT = re.compile(r"^[0-9]{20}$")
_READ_CHUNK = 1024 * 1024
_OCTET_STREAM = "application/octet-stream"
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchUpload"}
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


@dataclass(frozen=True, slots=True)
class _Segment:
    start: int
    size: int
    key: str

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(slots=True)
class _Upload:
    exists: bool  # the marker is there
    segments: list[_Segment]  # the contiguous run from offset 0
    stray: list[str]  # keys of segments past a gap (a crashed write's leftovers)

    @property
    def size(self) -> int:
        return self.segments[-1].end if self.segments else 0


class S3BlobStore:
    """A ``BlobStore`` on an S3-compatible object store (one bucket, one key prefix).

    The aiobotocore client is made on first use, in the event loop that uses it, and
    released by ``close``.
    """

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
        redirect: bool = False,
        presign_seconds: int = 300,
        part_size: int = 8 * MIB,
        max_connections: int = 64,
    ) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part_size {part_size} is under S3's 5 MiB minimum")
        self._bucket = bucket
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._redirect = redirect
        self._presign_seconds = presign_seconds
        self._part_size = part_size
        self._client_args: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": Config(
                # Path-style for a store of one's own (no bucket DNS names needed);
                # AWS itself picks virtual-hosted style.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                # Checksums only where S3 requires them: several S3-compatible stores
                # reject the CRC headers newer clients send by default.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 4, "mode": "standard"},
                max_pool_connections=max_connections,
            ),
        }
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._opening = asyncio.Lock()

    # --- the client -----------------------------------------------------------------

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    stack = AsyncExitStack()
                    session = get_session()
                    self._client = await stack.enter_async_context(
                        session.create_client("s3", **self._client_args)
                    )
                    self._stack = stack
        return self._client

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    # --- keys -----------------------------------------------------------------------

    def _blob_key(self, digest: Digest) -> str:
        return f"{self._prefix}blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"

    def _upload_prefix(self, upload_id: str) -> str:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise BlobNotFound(upload_id)
        return f"{self._prefix}uploads/{upload_id}/"

    def _segment_key(self, upload_id: str, start: int) -> str:
        return f"{self._upload_prefix(upload_id)}data/{start:020d}"

    # --- objects --------------------------------------------------------------------

    async def _list(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item

    async def _put(self, key: str, data: bytes) -> None:
        s3 = await self._s3()
        await s3.put_object(
            Bucket=self._bucket, Key=key, Body=data, ContentType=_OCTET_STREAM
        )

    async def _read(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` of an object. Raises ``BlobNotFound``."""
        if end is not None and end <= start:
            await self._head(key)  # nothing to read, but it must exist
            return
        args: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if start or end is not None:
            last = "" if end is None else str(end - 1)
            args["Range"] = f"bytes={start}-{last}"
        s3 = await self._s3()
        try:
            response = await s3.get_object(**args)
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(key) from None
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return  # start at or past the end: nothing to read
            raise
        async with response["Body"] as body:
            while chunk := await body.read(_READ_CHUNK):
                yield chunk

    async def _read_all(self, key: str, *, end: int) -> bytes:
        return b"".join([chunk async for chunk in self._read(key, end=end)])

    async def _head(self, key: str) -> dict[str, Any]:
        s3 = await self._s3()
        try:
            head: dict[str, Any] = await s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(key) from None
            raise
        return head

    async def _delete_keys(self, keys: list[str]) -> None:
        s3 = await self._s3()
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            await s3.delete_objects(
                Bucket=self._bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )

    # --- blobs ----------------------------------------------------------------------

    async def stat(self, digest: Digest) -> BlobInfo:
        head = await self._head(self._blob_key(digest))
        return BlobInfo(size=int(head["ContentLength"]))

    def open(
        self, digest: Digest, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        return self._read(self._blob_key(digest), start=start, end=end)

    async def redirect_url(self, digest: Digest) -> str | None:
        if not self._redirect:
            return None
        s3 = await self._s3()
        url: str = await s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": self._blob_key(digest),
                "ResponseContentType": _OCTET_STREAM,
            },
            ExpiresIn=self._presign_seconds,
        )
        return url

    async def delete(self, digest: Digest) -> None:
        s3 = await self._s3()
        await s3.delete_object(Bucket=self._bucket, Key=self._blob_key(digest))

    async def iter_digests(self) -> AsyncIterator[tuple[Digest, float]]:
        base = f"{self._prefix}blobs/"
        async for item in self._list(base):
            algorithm, _, rest = item["Key"][len(base) :].partition("/")
            try:
                digest = Digest.parse(f"{algorithm}:{rest.rpartition('/')[2]}")
            except DigestInvalid:
                continue  # a stray object is not a blob
            if rest != f"{digest.hex[:2]}/{digest.hex}":
                continue
            yield digest, item["LastModified"].timestamp()

    # --- health ---------------------------------------------------------------------

    async def check(self) -> None:
        probe = f"{self._prefix}readiness/{uuid.uuid4().hex}"
        s3 = await self._s3()
        try:
            await s3.list_objects_v2(
                Bucket=self._bucket, Prefix=f"{self._prefix}blobs/", MaxKeys=1
            )
            await self._put(probe, b"ok")
            await s3.delete_object(Bucket=self._bucket, Key=probe)
        except (BotoCoreError, ClientError) as exc:
            raise OSError(f"S3 bucket {self._bucket!r}: {exc}") from exc

    async def free_bytes(self) -> int | None:
        return None  # an object store has no free space to ask about

    # --- uploads --------------------------------------------------------------------

    async def _upload(self, upload_id: str) -> _Upload:
        prefix = self._upload_prefix(upload_id)
        exists = False
        found: list[_Segment] = []
        async for item in self._list(prefix):
            name = item["Key"][len(prefix) :]
            if name == "started":
                exists = True
            elif name.startswith("data/") and _SEGMENT.fullmatch(name[5:]):
                found.append(_Segment(int(name[5:]), int(item["Size"]), item["Key"]))
        found.sort(key=lambda s: s.start)
        segments: list[_Segment] = []
        stray: list[str] = []
        for segment in found:
            if segment.start == (segments[-1].end if segments else 0):
                segments.append(segment)
            else:
                stray.append(segment.key)
        return _Upload(exists, segments, stray)

    async def _existing(self, upload_id: str) -> _Upload:
        upload = await self._upload(upload_id)
        if not upload.exists:
            raise BlobNotFound(upload_id)
        return upload

    async def begin_upload(self, upload_id: str) -> None:
        await self._put(f"{self._upload_prefix(upload_id)}started", b"")

    async def upload_size(self, upload_id: str) -> int:
        return (await self._existing(upload_id)).size

    async def append(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterable[bytes],
        hasher: _Hash | None,
    ) -> int:
        upload = await self._existing(upload_id)
        if offset > upload.size:
            raise BlobNotFound(f"{upload_id} holds fewer than {offset} bytes")
        base, carry, straddled = await self._cut_back(upload, offset)
        buffer = bytearray(carry)
        position, written = base, []
        received = False
        try:
            async for chunk in body:
                if not chunk:
                    continue
                received = True
                if hasher is not None:
                    hasher.update(chunk)
                buffer += chunk
                while len(buffer) >= self._part_size:
                    key = self._segment_key(upload_id, position)
                    await self._put(key, bytes(buffer[: self._part_size]))
                    written.append(key)
                    position += self._part_size
                    del buffer[: self._part_size]
            # Unchanged only if nothing came and the carried segment ended at offset.
            if buffer and (received or straddled):
                await self._put(self._segment_key(upload_id, position), bytes(buffer))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._roll_back(upload_id, base, carry, written)
            raise
        return position + len(buffer)

    async def _cut_back(self, upload: _Upload, offset: int) -> tuple[int, bytes, bool]:
        """Drop what lies past ``offset``; where the new bytes start, and after what.

        Returns the start of the segment the new bytes go into, the bytes it keeps
        before ``offset`` (read back: the segment holding ``offset``, or a tail under
        S3's part minimum that the new bytes must join), and whether that segment held
        bytes past ``offset``.
        """
        base, carry, straddled = offset, b"", False
        for segment in upload.segments:
            joins_tail = segment.end == offset and segment.size < MIN_PART
            if segment.start < offset < segment.end or joins_tail:
                base, straddled = segment.start, segment.end > offset
                carry = await self._read_all(segment.key, end=offset - base)
                break
        beyond = [s.key for s in upload.segments if s.start > base] + upload.stray
        if base == offset:
            beyond += [s.key for s in upload.segments if s.start == base]
        if beyond:
            await self._delete_keys(beyond)
        return base, carry, straddled

    async def _roll_back(
        self, upload_id: str, base: int, carry: bytes, written: list[str]
    ) -> None:
        """Put the upload back to ``base + len(carry)`` bytes after a failed append."""
        base_key = self._segment_key(upload_id, base)
        with contextlib.suppress(BotoCoreError, ClientError):
            if carry:
                await self._put(base_key, carry)
            await self._delete_keys([k for k in written if k != base_key or not carry])

    async def read_upload(self, upload_id: str, *, end: int) -> AsyncIterator[bytes]:
        upload = await self._existing(upload_id)
        for segment in upload.segments:
            if segment.start >= end:
                return
            stop = min(segment.size, end - segment.start)
            async for chunk in self._read(segment.key, end=stop):
                yield chunk

    async def commit(self, upload_id: str, digest: Digest, *, size: int) -> None:
        upload = await self._existing(upload_id)
        if size > upload.size:
            raise BlobNotFound(f"{upload_id} holds fewer than {size} bytes")
        key = self._blob_key(digest)
        try:
            await self._head(key)
        except BlobNotFound:
            await self._assemble(key, upload.segments, size)
        # Same content already stored: keep it. GC cannot take it meanwhile: the
        # upload service claimed the digest in the metadata before calling commit.
        await self.abort(upload_id)

    async def _assemble(self, key: str, segments: list[_Segment], size: int) -> None:
        """Write the first ``size`` bytes of ``segments`` as the object ``key``."""
        s3 = await self._s3()
        pieces = [(s, min(s.size, size - s.start)) for s in segments if s.start < size]
        if not pieces:
            await self._put(key, b"")
            return
        first, length = pieces[0]
        if len(pieces) == 1 and length == first.size and length <= _MAX_COPY_OBJECT:
            await s3.copy_object(
                Bucket=self._bucket,
                Key=key,
                CopySource={"Bucket": self._bucket, "Key": first.key},
            )
            return
        created = await s3.create_multipart_upload(
            Bucket=self._bucket, Key=key, ContentType=_OCTET_STREAM
        )
        multipart = created["UploadId"]
        try:
            parts = []
            for number, (segment, length) in enumerate(pieces, start=1):
                copied = await s3.upload_part_copy(
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=multipart,
                    PartNumber=number,
                    CopySource={"Bucket": self._bucket, "Key": segment.key},
                    CopySourceRange=f"bytes=0-{length - 1}",
                )
                etag = copied["CopyPartResult"]["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
            await s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=multipart,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with anyio.CancelScope(shield=True), contextlib.suppress(ClientError):
                await s3.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=multipart
                )
            raise

    async def abort(self, upload_id: str) -> None:
        try:
            prefix = self._upload_prefix(upload_id)
        except BlobNotFound:
            return
        s3 = await self._s3()
        # The marker first: from then on the upload is gone, whatever is left.
        await s3.delete_object(Bucket=self._bucket, Key=f"{prefix}started")
        keys = [item["Key"] async for item in self._list(prefix)]
        if keys:
            await self._delete_keys(keys)

    async def iter_uploads(self) -> AsyncIterator[tuple[str, float]]:
        base = f"{self._prefix}uploads/"
        latest: dict[str, float] = {}
        async for item in self._list(base):
            upload_id = item["Key"][len(base) :].partition("/")[0]
            if _UPLOAD_ID.fullmatch(upload_id):
                mtime = item["LastModified"].timestamp()
                latest[upload_id] = max(mtime, latest.get(upload_id, mtime))
        for upload_id, mtime in latest.items():
            yield upload_id, mtime
