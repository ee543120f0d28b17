"""``GET /v2/<name>/referrers/<digest>`` (spec.md, "Listing Referrers")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cargohold.api.access import authorize
from cargohold.api.state import services
from cargohold.api.v2.common import path_digest, repository
from cargohold.auth.policy import PULL
from cargohold.oci import mediatypes
from cargohold.registry.manifests import referrers_index


async def list_referrers(request: Request) -> Response:
    repo, subject = repository(request), path_digest(request)
    access = await authorize(request, repo, PULL)
    artifact_type = request.query_params.get("artifactType") or None
    referrers = await services(request).manifests.referrers(
        access, subject, artifact_type
    )
    headers = {"OCI-Filters-Applied": "artifactType"} if referrers.filtered else {}
    return Response(
        referrers_index(referrers), headers=headers, media_type=mediatypes.OCI_INDEX
    )
