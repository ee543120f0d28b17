"""OpenAPI path and schema of the vulnerability view (issue #8)."""

from __future__ import annotations

from cargohold.api.management.openapi_ops import op, path_param
from cargohold.api.management.schemas import JSON, ref
from cargohold.registry.osv import SEVERITIES

_COUNTS: JSON = {
    "type": "object",
    "required": list(SEVERITIES),
    "additionalProperties": False,
    "properties": {s: {"type": "integer", "minimum": 0} for s in SEVERITIES},
}
_MATCH: JSON = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id",
        "severity",
        "summary",
        "aliases",
        "ecosystem",
        "package",
        "version",
        "fixed",
        "matched_at",
    ],
    "properties": {
        "id": {"type": "string", "description": "the OSV id"},
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "summary": {"type": ["string", "null"]},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "ecosystem": {"type": "string", "description": "OSV's name: Debian, PyPI…"},
        "package": {"type": "string"},
        "version": {"type": "string", "description": "the version in the image"},
        "fixed": {
            "type": ["string", "null"],
            "description": "the version that fixes it; null: no fix known",
        },
        "matched_at": {"type": "string", "format": "date-time"},
    },
}

VULN_SCHEMAS: dict[str, JSON] = {
    "ImageVulnerabilities": {
        "type": "object",
        "additionalProperties": False,
        "required": ["repository", "digest", "described", "counts", "vulnerabilities"],
        "properties": {
            "repository": {"type": "string"},
            "digest": {"type": "string"},
            "described": {
                "type": "boolean",
                "description": "false until the image's packages are known",
            },
            "counts": _COUNTS,
            "vulnerabilities": {
                "type": "array",
                "items": _MATCH,
                "description": "worst severity first",
            },
        },
    }
}


def vuln_paths() -> dict[str, JSON]:
    return {
        "/repositories/{name}/manifests/{reference}/vulnerabilities": {
            "get": op(
                "image_vulnerabilities",
                "an image's vulnerabilities from the imported OSV feed, with counts "
                "by severity and fixed versions (who may pull the manifest)",
                success="200",
                result=ref("ImageVulnerabilities"),
                params=(
                    path_param("name", "repository name, slashes included"),
                    path_param("reference", "manifest digest, or a tag"),
                ),
            )
        }
    }
