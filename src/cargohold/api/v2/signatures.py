"""The registry signature API extension (containers/image's ``X-Registry-Supports-
Signatures``): ``GET``/``PUT /extensions/v2/<name>/signatures/<digest>``.

``GET`` (pull rights on the manifest, tier visibility included) lists the stored
simple signatures as ``{"signatures": [{"schemaVersion": 2, "name":
"<digest>@<id>", "type": "atomic", "content": base64}]}``; ``PUT`` (push rights)
stores one such entry and answers ``201 Created``, also when it was stored already.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.api.access import authorize
from cargohold.api.state import services
from cargohold.api.v2.common import path_digest, repository
from cargohold.auth.policy import PULL, PUSH
from cargohold.registry.signing.service import (
    MAX_SIGNATURE_BYTES,
    SignatureInvalid,
    extension_entry,
)

_BODY_LIMIT = MAX_SIGNATURE_BYTES * 2


async def get_signatures(request: Request) -> Response:
    repo, digest = repository(request), path_digest(request)
    access = await authorize(request, repo, PULL)
    stored = await services(request).signing.signatures(access, digest)
    return JSONResponse({"signatures": [extension_entry(s) for s in stored]})


async def put_signature(request: Request) -> Response:
    repo, digest = repository(request), path_digest(request)
    access = await authorize(request, repo, PUSH)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _BODY_LIMIT:
            msg = f"a signature body is at most {_BODY_LIMIT} bytes"
            raise SignatureInvalid(msg)
    await services(request).signing.put_signature(access, digest, bytes(body))
    return Response(status_code=201)
