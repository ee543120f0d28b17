"""Blob uploads: ``/v2/<name>/blobs/uploads/`` and ``/v2/<name>/blobs/uploads/<id>``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cargohold.api.access import access_to, authorize
from cargohold.api.state import services
from cargohold.api.v2.common import content_length, repository
from cargohold.auth.policy import PUSH
from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid
from cargohold.oci.names import RepositoryName
from cargohold.oci.ranges import upload_progress_headers


def _progress(repo: RepositoryName, upload_id: str, size: int, status: int) -> Response:
    return Response(
        status_code=status,
        headers=upload_progress_headers(repo.value, upload_id, size)
        | {"Content-Length": "0"},
    )


def _created(repo: RepositoryName, digest: Digest) -> Response:
    return Response(
        status_code=201,
        headers={
            "Location": f"/v2/{repo.value}/blobs/{digest}",
            "Docker-Content-Digest": str(digest),
            "Content-Length": "0",
        },
    )


def _query_digest(request: Request) -> Digest | None:
    value = request.query_params.get("digest")
    return Digest.parse(value) if value is not None else None


async def start_upload(request: Request) -> Response:
    """POST: mount, single-request upload, or open a session.

    See spec.md, "Pushing blobs".
    """
    repo = repository(request)
    access = await authorize(request, repo, PUSH)
    svc = services(request)
    mount = request.query_params.get("mount")
    if mount is not None:
        source_name = request.query_params.get("from")
        source = (
            await access_to(request, RepositoryName.parse(source_name))
            if source_name
            else None
        )
        mounted = await svc.blobs.mount(access, Digest.parse(mount), source)
        if mounted is not None:
            return _created(repo, mounted.digest)
    digest = _query_digest(request)
    if digest is None:
        record = await svc.uploads.start(access)
        return _progress(repo, record.id, 0, 202)
    await svc.uploads.upload(
        access, digest, request.stream(), content_length=content_length(request)
    )
    return _created(repo, digest)


async def upload_status(request: Request) -> Response:
    repo = repository(request)
    access = await authorize(request, repo, PUSH)
    upload_id = request.path_params["upload"]
    record = await services(request).uploads.status(access, upload_id)
    return _progress(repo, record.id, record.size, 204)


async def patch_upload(request: Request) -> Response:
    repo = repository(request)
    access = await authorize(request, repo, PUSH)
    upload_id = request.path_params["upload"]
    size = await services(request).uploads.append(
        access,
        upload_id,
        request.stream(),
        content_range=request.headers.get("content-range") or None,
        content_length=content_length(request),
    )
    return _progress(repo, upload_id, size, 202)


async def finish_upload(request: Request) -> Response:
    repo = repository(request)
    access = await authorize(request, repo, PUSH)
    digest = _query_digest(request)
    if digest is None:
        raise DigestInvalid(
            "the digest query parameter is required to finish an upload"
        )
    await services(request).uploads.finish(
        access,
        request.path_params["upload"],
        digest,
        request.stream(),
        content_length=content_length(request),
        content_range=request.headers.get("content-range") or None,
    )
    return _created(repo, digest)


async def cancel_upload(request: Request) -> Response:
    repo = repository(request)
    access = await authorize(request, repo, PUSH)
    await services(request).uploads.cancel(access, request.path_params["upload"])
    return Response(status_code=204)
