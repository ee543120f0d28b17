"""``GET /v2/<name>/referrers/<digest>`` (spec.md, "Listing Referrers")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cargohold.api.v2.common import path_digest, repository, services
from cargohold.oci import mediatypes
from cargohold.registry.manifests import referrers_index


async def list_referrers(request: Request) -> Response:
    artifact_type = request.query_params.get("artifactType") or None
    referrers = await services(request).manifests.referrers(
        repository(request), path_digest(request), artifact_type
    )
    headers = {"OCI-Filters-Applied": "artifactType"} if referrers.filtered else {}
    return Response(referrers_index(referrers), headers=headers, media_type=mediatypes.OCI_INDEX)
