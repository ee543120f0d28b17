"""``/repositories/{name}/manifests/{reference}/vulnerabilities``: the matches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.common import reply
from cargohold.api.state import services
from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid, ManifestInvalid, NameInvalid
from cargohold.oci.names import RepositoryName, Tag
from cargohold.registry.admin import InvalidRequest
from cargohold.registry.osv import SEVERITIES

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal
    from cargohold.registry.vulns import ImageView


async def image_vulnerabilities(request: Request, actor: Principal) -> Response:
    text = request.path_params["reference"]
    try:
        repository = RepositoryName.parse(request.path_params["name"])
        reference: Digest | Tag = Digest.parse(text) if ":" in text else Tag.parse(text)
    except (NameInvalid, DigestInvalid, ManifestInvalid) as exc:
        raise InvalidRequest(str(exc.detail)) from None
    view = await services(request).vulns.view(actor, repository, reference)
    return reply(as_json(view))


def as_json(view: ImageView) -> dict[str, object]:
    return {
        "repository": view.repository,
        "digest": view.digest,
        "described": view.described,
        "counts": {s: view.counts.get(s, 0) for s in SEVERITIES},
        "vulnerabilities": [
            {
                "id": d.match.vulnerability,
                "severity": d.match.severity,
                "summary": d.summary,
                "aliases": list(d.aliases),
                "ecosystem": d.match.ecosystem,
                "package": d.match.package,
                "version": d.match.version,
                "fixed": d.match.fixed,
                "matched_at": views.timestamp(d.matched_at),
            }
            for d in view.matches
        ],
    }
