"""Every ``/v2`` route, named for URL building (dist ``registry/api/v2/routes.go``)."""

from __future__ import annotations

from starlette.routing import Route

from cargohold.api.v2 import (
    base,
    blobs,
    manifests,
    referrers,
    signatures,
    tags,
    uploads,
)

NAME = "/v2/{name:path}"
# The registry signature API extension (containers/image), beside /v2.
SIGNATURES = "/extensions/v2/{name:path}/signatures/{digest}"

routes = [
    Route("/v2/", base.version_check, methods=["GET"], name="base"),
    Route("/v2/_catalog", tags.catalog, methods=["GET"], name="catalog"),
    Route(f"{NAME}/tags/list", tags.list_tags, methods=["GET"], name="tags"),
    Route(
        f"{NAME}/manifests/{{reference}}",
        manifests.get_manifest,
        methods=["GET", "HEAD"],
        name="manifest",
    ),
    Route(f"{NAME}/manifests/{{reference}}", manifests.put_manifest, methods=["PUT"]),
    Route(
        f"{NAME}/manifests/{{reference}}", manifests.delete_manifest, methods=["DELETE"]
    ),
    Route(
        f"{NAME}/blobs/uploads/", uploads.start_upload, methods=["POST"], name="uploads"
    ),
    Route(
        f"{NAME}/blobs/uploads/{{upload}}",
        uploads.upload_status,
        methods=["GET"],
        name="upload",
    ),
    Route(f"{NAME}/blobs/uploads/{{upload}}", uploads.patch_upload, methods=["PATCH"]),
    Route(f"{NAME}/blobs/uploads/{{upload}}", uploads.finish_upload, methods=["PUT"]),
    Route(
        f"{NAME}/blobs/uploads/{{upload}}", uploads.cancel_upload, methods=["DELETE"]
    ),
    Route(f"{NAME}/blobs/{{digest}}", blobs.head_blob, methods=["HEAD"], name="blob"),
    Route(f"{NAME}/blobs/{{digest}}", blobs.get_blob, methods=["GET"]),
    Route(f"{NAME}/blobs/{{digest}}", blobs.delete_blob, methods=["DELETE"]),
    Route(
        f"{NAME}/referrers/{{digest}}",
        referrers.list_referrers,
        methods=["GET"],
        name="referrers",
    ),
    Route(SIGNATURES, signatures.get_signatures, methods=["GET"], name="signatures"),
    Route(SIGNATURES, signatures.put_signature, methods=["PUT"]),
]
