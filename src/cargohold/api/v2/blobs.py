"""Blobs: ``HEAD``/``GET``/``DELETE /v2/<name>/blobs/<digest>``."""

from __future__ import annotations

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
from cargohold.registry.blobs import Blob

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
        return RedirectResponse(blob.redirect, status_code=307, headers=_headers(blob))
    if blob.path is not None:
        return BlobFileResponse(
            blob.path,
            headers=_headers(blob),
            media_type=OCTET_STREAM,
            stat_result=blob.path.stat(),
        )
    headers = _headers(blob) | {"Content-Length": str(blob.size)}
    return StreamingResponse(svc.stream(blob), headers=headers, media_type=OCTET_STREAM)


async def delete_blob(request: Request) -> Response:
    repo = repository(request)
    access = await authorize(request, repo, DELETE)
    await services(request).blobs.delete(access, path_digest(request))
    return Response(status_code=202)
