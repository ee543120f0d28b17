"""Every error is OCI error JSON with the spec's code and status."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.helpers import assert_error

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "0" * 64


async def test_version_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v2/UPPER/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/a/%2E%2E/b/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/a//b/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/" + "a" * 256 + "/tags/list", 400, "NAME_INVALID"),
        ("POST", "/v2/-bad/blobs/uploads/", 400, "NAME_INVALID"),
        ("GET", f"/v2/r/blobs/{DIGEST}", 404, "BLOB_UNKNOWN"),
        ("DELETE", f"/v2/r/blobs/{DIGEST}", 404, "BLOB_UNKNOWN"),
        ("GET", "/v2/r/blobs/sha256:xyz", 400, "DIGEST_INVALID"),
        ("GET", f"/v2/r/manifests/{DIGEST}", 404, "MANIFEST_UNKNOWN"),
        ("DELETE", "/v2/r/manifests/nope", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/r/blobs/uploads/" + "a" * 32, 404, "BLOB_UPLOAD_UNKNOWN"),
        (
            "PUT",
            "/v2/r/blobs/uploads/" + "a" * 32 + f"?digest={DIGEST}",
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        ("DELETE", "/v2/r/blobs/uploads/" + "a" * 32, 404, "BLOB_UPLOAD_UNKNOWN"),
        ("GET", "/v2/r/tags/list", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/_catalog?n=x", 400, "PAGINATION_NUMBER_INVALID"),
        ("GET", "/nothing-here", 404, "NOT_FOUND"),
        ("POST", "/v2/r/manifests/latest", 405, "UNSUPPORTED"),
        ("POST", "/v2/", 405, "UNSUPPORTED"),
    ],
)
async def test_error_shape(
    client: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    assert_error(await client.request(method, path), status, code)


async def test_blob_head_error_has_no_body(client: httpx.AsyncClient) -> None:
    response = await client.head(f"/v2/r/blobs/{DIGEST}")
    assert response.status_code == 404
    assert response.content == b""
