"""``/repositories/{name}/manifests/{reference}/sbom``: an image's SBOM (SPDX 2.3 or
CycloneDX 1.6 JSON), for whoever may pull the manifest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management.common import reply
from cargohold.api.state import services, settings
from cargohold.registry.admin import InvalidRequest
from cargohold.registry.sbom.documents import cyclonedx_document, spdx_document

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal

FORMATS = {"spdx": spdx_document, "cyclonedx": cyclonedx_document}


async def get_sbom(request: Request, actor: Principal) -> Response:
    wanted = request.query_params.get("format", "spdx")
    build = FORMATS.get(wanted)
    if build is None:
        raise InvalidRequest(
            f"format must be one of {', '.join(FORMATS)}, not {wanted!r}"
        )
    described = await services(request).sbom.described(
        actor, request.path_params["name"], request.path_params["reference"]
    )
    registry = settings(request).server.public_url or str(request.base_url)
    return reply(build(described, registry=registry))
