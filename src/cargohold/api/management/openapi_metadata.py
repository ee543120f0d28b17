"""OpenAPI paths and schemas of an image's metadata and vulnerabilities (issue #8)."""

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

METADATA_SCHEMAS: dict[str, JSON] = {
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


_OPTIONAL: list[JSON] = [{}, {"basic": []}, {"bearer": []}]
_NULLABLE_STRING: JSON = {"type": ["string", "null"]}


def _object(properties: dict[str, JSON]) -> JSON:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


_SIGNATURE = _object(
    {
        "format": {
            "type": "string",
            "enum": ["simple-signing", "cosign", "sigstore-bundle"],
        },
        "key_id": _NULLABLE_STRING,
        "signer": {"type": "string", "description": "registry, or who stored it"},
        "verified": {"type": "boolean"},
        "detail": {"type": "string", "description": "what was checked, or why not"},
    }
)
_ATTESTATION = _object(
    {
        "predicate_type": {"type": "string"},
        "where": {"type": "string", "description": "the referrer, or the .att tag"},
        "key_id": _NULLABLE_STRING,
        "signer": {"type": "string", "enum": ["registry", "client"]},
        "verified": {"type": "boolean"},
        "detail": {"type": "string"},
    }
)
_PACKAGE = _object(
    {
        "ecosystem": {"type": "string"},
        "name": {"type": "string"},
        "version": {"type": "string"},
        "purl": {"type": "string"},
        "license": _NULLABLE_STRING,
        "path": {"type": "string", "description": "where in the image"},
    }
)
_LAYER = _object(
    {"digest": {"type": "string"}, "size": {"type": "integer"}, "media_type": {}}
)
METADATA_SCHEMAS["ImageMetadata"] = _object(
    {
        "repository": {"type": "string"},
        "digest": {"type": "string"},
        "media_type": {"type": "string"},
        "kind": {"type": "string", "enum": ["image", "index", "artifact"]},
        "size": {"type": "integer", "description": "the manifest's bytes"},
        "artifact_type": _NULLABLE_STRING,
        "platforms": {"type": "array", "items": {"type": "object"}},
        "manifests": {
            "type": "array",
            "items": {"type": "object"},
            "description": "an index's children (digest, media_type, size, platform)",
        },
        "created": _NULLABLE_STRING,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "config_size": {"type": ["integer", "null"]},
        "layers": {"type": "array", "items": _LAYER},
        "image_size": {
            "type": ["integer", "null"],
            "description": "config and layers, compressed",
        },
        "description": _object(
            {
                "state": {
                    "type": "string",
                    "enum": ["pending", "done", "failed", "skipped"],
                },
                "described_at": {"type": ["string", "null"], "format": "date-time"},
                "error": _NULLABLE_STRING,
            }
        ),
        "packages": _object(
            {
                "count": {"type": "integer", "minimum": 0},
                "items": {"type": "array", "items": _PACKAGE},
            }
        ),
        "verified": {
            "type": "boolean",
            "description": "a registry signature verifies and nothing the registry "
            "made (or claims to have made) fails",
        },
        "signatures": {"type": "array", "items": _SIGNATURE},
        "attestations": {"type": "array", "items": _ATTESTATION},
        "sboms": {
            "type": "array",
            "description": "unsigned SBOMs clients attached",
            "items": _object(
                {
                    "media_type": {"type": "string"},
                    "where": {"type": "string"},
                    "digest": {"type": "string"},
                    "size": {"type": "integer"},
                }
            ),
        },
        "vulnerabilities": _object(
            {
                "counts": _COUNTS,
                "items": {"type": "array", "items": _MATCH},
            }
        ),
    }
)


def metadata_paths() -> dict[str, JSON]:
    return {
        "/repositories/{name}/manifests/{reference}/vulnerabilities": {
            "get": {
                # Credentials optional: without them, what anonymous may pull.
                "security": _OPTIONAL,
                **op(
                    "image_vulnerabilities",
                    "an image's vulnerabilities from the imported OSV feed, with "
                    "counts by severity and fixed versions (who may pull the "
                    "manifest; anonymous callers too)",
                    success="200",
                    result=ref("ImageVulnerabilities"),
                    params=(
                        path_param("name", "repository name, slashes included"),
                        path_param("reference", "manifest digest, or a tag"),
                    ),
                ),
            }
        },
        "/repositories/{name}/manifests/{reference}/metadata": {
            "get": {
                "security": _OPTIONAL,
                **op(
                    "get_metadata",
                    "everything known about a manifest: what it is (image, index "
                    "and its platforms, artifact), its config's facts, its packages, "
                    "every signature and attestation with its verification result, "
                    "its vulnerabilities (who may pull the manifest; anonymous "
                    "callers too)",
                    success="200",
                    result=ref("ImageMetadata"),
                    params=(
                        path_param("name", "repository name, slashes included"),
                        path_param("reference", "manifest digest, or a tag"),
                    ),
                ),
            }
        },
    }
