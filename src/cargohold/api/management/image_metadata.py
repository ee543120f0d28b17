"""``/repositories/{name}/manifests/{reference}/metadata``: everything known about a
manifest (facts, packages, signatures and attestations with their verification,
vulnerabilities), for whoever may pull it; anonymous callers too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cargohold.api.management import views
from cargohold.api.management.common import reply
from cargohold.api.management.vulns import as_json as vulnerabilities_json
from cargohold.api.state import services

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal
    from cargohold.registry.image_metadata import ImageMetadata


async def get_metadata(request: Request, actor: Principal) -> Response:
    found = await services(request).image_metadata.metadata(
        actor, request.path_params["name"], request.path_params["reference"]
    )
    return reply(as_json(found))


def as_json(found: ImageMetadata) -> dict[str, Any]:
    description = found.description
    facts = dict(description.facts) if description is not None else {}
    verification = found.verification
    vulnerabilities = vulnerabilities_json(found.vulnerabilities)
    return {
        "repository": found.repository,
        "digest": found.digest,
        "media_type": found.media_type,
        "kind": found.kind,
        "size": found.size,
        "artifact_type": found.artifact_type,
        "platforms": (
            [child["platform"] for child in found.children]
            if found.kind == "index"
            else [facts["platform"]]
            if facts.get("platform")
            else []
        ),
        "manifests": found.children,
        "created": facts.get("created"),
        "labels": facts.get("labels", {}),
        "config_size": facts.get("config_size"),
        "layers": facts.get("layers", []),
        "image_size": facts.get("size"),
        "description": {
            "state": description.state if description is not None else "pending",
            "described_at": (
                views.timestamp(description.described_at)
                if description is not None
                else None
            ),
            "error": description.error if description is not None else None,
        },
        "packages": {
            "count": description.package_count if description is not None else 0,
            "items": [
                {
                    "ecosystem": p.ecosystem,
                    "name": p.name,
                    "version": p.version,
                    "purl": p.purl,
                    "license": p.license,
                    "path": p.path,
                }
                for p in found.packages
            ],
        },
        "verified": verification.ok,
        "signatures": [
            {
                "format": s.format,
                "key_id": s.key_id,
                "signer": s.signer,
                "verified": s.verified,
                "detail": s.detail,
            }
            for s in verification.signatures
        ],
        "attestations": [
            {
                "predicate_type": a.predicate_type,
                "where": a.where,
                "key_id": a.key_id,
                "signer": a.signer,
                "verified": a.verified,
                "detail": a.detail,
            }
            for a in verification.attestations
        ],
        "sboms": [
            {
                "media_type": s.media_type,
                "where": s.where,
                "digest": s.digest,
                "size": s.size,
            }
            for s in verification.sboms
        ],
        "vulnerabilities": {
            "counts": vulnerabilities["counts"],
            "items": vulnerabilities["vulnerabilities"],
        },
    }
