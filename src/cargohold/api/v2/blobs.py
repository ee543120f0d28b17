"""Blobs: ``HEAD``/``GET``/``DELETE /v2/<name>/blobs/<digest>``."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    RangeNotSatisfiable,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from cargohold.api.access import authorize
from cargohold.api.state import services
from cargohold.api.v2.common import path_digest, repository
from cargohold.auth.policy import DELETE, PULL
from cargohold.oci.ranges import Unsatisfiable, parse_byte_ranges
from cargohold.registry.blobs import Blob, BlobService

OCTET_STREAM = "application/octet-stream"


class BlobFileResponse(FileResponse):
    # 1 MiB reads: Starlette's 64 KiB default costs 2-5x the CPU per GiB (STACK.md).
    chunk_size = 1024 * 1024

    @classmethod
    def _parse_range_header(
        cls, http_range: str, file_size: int
    ) -> list[tuple[int, int]]:
        # Starlette answers 400 to a Range it cannot parse; RFC 9110 section 14.2 says
        # to ignore it. An empty list makes Starlette send the whole file (still by
        # pathsend on granian); one range gets 206, several a multipart 206.
        ranges = parse_byte_ranges(http_range, file_size)
        if isinstance(ranges, Unsatisfiable):
            raise RangeNotSatisfiable(ranges.size)
        return ranges or []


def _headers(blob: Blob) -> dict[str, str]:
    digest = str(blob.digest)
    return {
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000, immutable",
    }


async def head_blob(request: Request) -> Response:
    repo, digest = repository(request), path_digest(request)
    access = await authorize(request, repo, PULL)
    blob = await services(request).blobs.head(access, digest)
    headers = _headers(blob) | {"Content-Length": str(blob.size)}
    return Response(status_code=200, headers=headers, media_type=OCTET_STREAM)


async def get_blob(request: Request) -> Response:
    repo, digest = repository(request), path_digest(request)
    access = await authorize(request, repo, PULL)
    svc = services(request).blobs
    blob = await svc.get(access, digest)
    if blob.redirect is not None:
        # The presigned URL answers Range itself; clients resend it after the 307.
        return RedirectResponse(blob.redirect, status_code=307, headers=_headers(blob))
    if blob.local is not None:
        # The store's local file: granian sends it itself (pathsend), Range included.
        return BlobFileResponse(
            blob.local.path,
            headers=_headers(blob),
            media_type=OCTET_STREAM,
            stat_result=blob.local.stat,
        )
    return _streamed(request, svc, blob)


def _streamed(request: Request, svc: BlobService, blob: Blob) -> Response:
    """The blob through this process, or byte ranges of it (206)."""
    headers = _headers(blob)
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    ranges = None
    if wanted is not None and (if_range is None or if_range == headers["ETag"]):
        ranges = parse_byte_ranges(wanted, blob.size)
    if isinstance(ranges, Unsatisfiable):
        headers["Content-Range"] = f"bytes */{ranges.size}"
        return Response(status_code=416, headers=headers)
    if ranges and len(ranges) > 1:
        return _multipart(svc, blob, ranges, headers)
    if ranges:
        start, end = ranges[0]
        headers |= {
            "Content-Range": f"bytes {start}-{end - 1}/{blob.size}",
            "Content-Length": str(end - start),
        }
        return StreamingResponse(
            svc.stream(blob, start=start, end=end),
            status_code=206,
            headers=headers,
            media_type=OCTET_STREAM,
        )
    headers["Content-Length"] = str(blob.size)
    return StreamingResponse(svc.stream(blob), headers=headers, media_type=OCTET_STREAM)


def _multipart(
    svc: BlobService, blob: Blob, ranges: list[tuple[int, int]], headers: dict[str, str]
) -> Response:
    """Several ranges as ``multipart/byteranges`` (RFC 9110 section 14.6), in the
    shape Starlette's ``FileResponse`` gives the filesystem store's blobs."""
    boundary = secrets.token_hex(13)
    parts = [
        (
            f"--{boundary}\r\nContent-Type: {OCTET_STREAM}\r\n"
            f"Content-Range: bytes {start}-{end - 1}/{blob.size}\r\n\r\n"
        ).encode("latin-1")
        for start, end in ranges
    ]
    closing = f"--{boundary}--".encode("latin-1")
    length = len(closing) + sum(
        len(head) + (end - start) + 2
        for head, (start, end) in zip(parts, ranges, strict=True)
    )

    async def body() -> AsyncIterator[bytes]:
        for head, (start, end) in zip(parts, ranges, strict=True):
            yield head
            async for chunk in svc.stream(blob, start=start, end=end):
                yield chunk
            yield b"\r\n"
        yield closing

    return StreamingResponse(
        body(),
        status_code=206,
        headers=headers | {"Content-Length": str(length)},
        media_type=f"multipart/byteranges; boundary={boundary}",
    )


async def delete_blob(request: Request) -> Response:
    repo = repository(request)
    access = await authorize(request, repo, DELETE)
    await services(request).blobs.delete(access, path_digest(request))
    return Response(status_code=202)
