"""Manifests: ``HEAD``/``GET``/``PUT``/``DELETE /v2/<name>/manifests/<reference>``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cargohold.api.access import authorize
from cargohold.api.state import client_address, services, settings
from cargohold.api.v2.common import content_length, repository
from cargohold.auth.policy import DELETE, PULL, PUSH
from cargohold.oci.errors import ManifestTooLarge, ManifestUnknown
from cargohold.oci.names import ManifestReferenceInvalid
from cargohold.registry.manifests import ManifestRef, StoredManifest


def _reference(request: Request, *, write: bool = False) -> ManifestRef:
    text = request.path_params["reference"]
    try:
        return ManifestRef.parse(text)
    except ManifestReferenceInvalid:
        if write:
            raise
        # Nothing can exist under a tag that cannot be pushed (conformance expects 404).
        raise ManifestUnknown(text[:200]) from None


def _headers(manifest: StoredManifest) -> dict[str, str]:
    digest = str(manifest.digest)
    return {"Docker-Content-Digest": digest, "ETag": f'"{digest}"'}


async def get_manifest(request: Request) -> Response:
    # The stored bytes are served as pushed, with the media type they were pushed as:
    # the digest clients verify is over exactly these bytes, so nothing is converted.
    repo, ref = repository(request), _reference(request)
    access = await authorize(request, repo, PULL)
    svc = services(request)
    manifest = await svc.manifests.get(access, ref)
    pulls, headers = svc.pulls, request.headers
    pulls.note(
        access,
        request.path_params["reference"],
        str(manifest.digest),
        method=request.method,
        peer=client_address(request),
        # Read only where it can count: from a configured trusted proxy.
        forwarded_for=(
            ",".join(headers.getlist("x-forwarded-for")) or None
            if pulls.trusts_proxies
            else None
        ),
        user_agent=headers.get("user-agent", ""),
    )
    response = Response(
        manifest.content, headers=_headers(manifest), media_type=manifest.media_type
    )
    # Advisories covering this manifest, for anyone who reads it (spec "Warnings").
    for warning in await svc.advisories.warnings.lookup(
        repo.value, str(manifest.digest)
    ):
        response.headers.append("Warning", warning)
    return response


async def _read_body(request: Request, limit: int) -> bytes:
    declared = content_length(request)
    if declared is not None and declared > limit:
        raise ManifestTooLarge(f"manifest of {declared} bytes exceeds {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ManifestTooLarge(f"manifest exceeds {limit} bytes")
    return bytes(body)


async def put_manifest(request: Request) -> Response:
    repo = repository(request)
    ref = _reference(request, write=True)
    access = await authorize(request, repo, PUSH)
    limit = settings(request).registry.max_manifest_bytes
    body = await _read_body(request, limit)
    stored = await services(request).manifests.put(
        access, ref, body, request.headers.get("content-type")
    )
    headers = _headers(stored) | {
        "Location": f"/v2/{repo.value}/manifests/{stored.digest}",
        "Content-Length": "0",
    }
    if stored.subject is not None:
        headers["OCI-Subject"] = str(stored.subject)
    return Response(status_code=201, headers=headers)


async def delete_manifest(request: Request) -> Response:
    repo = repository(request)
    access = await authorize(request, repo, DELETE)
    await services(request).manifests.delete(access, _reference(request))
    return Response(status_code=202)
