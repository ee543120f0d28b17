"""Bad input over the whole app: the spec's error, never a 5xx, nothing partial left.

Manifests nested too deep or with duplicate keys, descriptors whose size is wrong,
bodies larger than the registry accepts, invalid ``Range`` headers on blob reads, and
bad ``Content-Range`` headers on upload chunks.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.helpers import (
    LAYER,
    OCI_INDEX,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
    push_blob,
)

pytestmark = pytest.mark.anyio


async def assert_no_manifest(client: httpx.AsyncClient, repo: str, body: bytes) -> None:
    for reference in ("t", digest_of(body)):
        response = await client.get(f"/v2/{repo}/manifests/{reference}")
        assert_error(response, 404, "MANIFEST_UNKNOWN")


async def put_manifest(
    client: httpx.AsyncClient, body: bytes, content_type: str | None = OCI_MANIFEST
) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return await client.put("/v2/r/manifests/t", content=body, headers=headers)


# --- manifests ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["top", "annotations", "unknown field"])
@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"k":', "}")])
async def test_manifest_nested_10000_deep_is_invalid(
    client: httpx.AsyncClient, where: str, opening: str, closing: str
) -> None:
    deep = (opening * 10_000 + "1" + closing * 10_000).encode()
    await push_blob(client, "r", b"{}")
    body = image_manifest(b"{}", [])
    if where == "top":
        body = deep
    else:
        key = b"annotations" if where == "annotations" else b"x-unknown"
        body = body[:-1] + b', "' + key + b'": ' + deep + b"}"
    assert_error(await put_manifest(client, body), 400, "MANIFEST_INVALID")
    await assert_no_manifest(client, "r", body)


async def test_manifest_with_duplicate_keys_is_invalid(
    client: httpx.AsyncClient,
) -> None:
    good, other = b"good layer", b"other layer"
    for data in (b"{}", good, other):
        await push_blob(client, "r", data)
    body = image_manifest(b"{}", [good])
    # One parser reads the first "layers", another the last: refuse both.
    layers = json.dumps([descriptor(other, LAYER)]).encode()
    body = body[:-1] + b', "layers": ' + layers + b"}"
    response = await put_manifest(client, body)
    assert_error(response, 400, "MANIFEST_INVALID")
    assert "duplicate key 'layers'" in response.json()["errors"][0]["detail"]
    await assert_no_manifest(client, "r", body)


@pytest.mark.parametrize("which", ["config", "layer"])
async def test_descriptor_size_must_match_the_stored_blob(
    client: httpx.AsyncClient, which: str
) -> None:
    config, layer = b'{"os": "linux"}', b"layer bytes"
    await push_blob(client, "r", config)
    await push_blob(client, "r", layer)
    document = json.loads(image_manifest(config, [layer]))
    wrong = document["config"] if which == "config" else document["layers"][0]
    stored = wrong["size"]
    wrong["size"] = stored + 1
    body = json.dumps(document).encode()
    response = await put_manifest(client, body)
    assert_error(response, 400, "MANIFEST_INVALID")
    detail = response.json()["errors"][0]["detail"]
    assert wrong["digest"] in detail
    assert f"declared {stored + 1} bytes, stored {stored}" in detail
    await assert_no_manifest(client, "r", body)


async def test_index_child_size_must_match_the_child_manifest(
    client: httpx.AsyncClient,
) -> None:
    await push_blob(client, "r", b"{}")
    child = image_manifest(b"{}", [])
    pushed = await client.put(
        f"/v2/r/manifests/{digest_of(child)}",
        content=child,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert pushed.status_code == 201
    entry = descriptor(child, OCI_MANIFEST) | {"size": len(child) - 1}
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    ).encode()
    response = await put_manifest(client, body, OCI_INDEX)
    assert_error(response, 400, "MANIFEST_INVALID")
    assert f"stored {len(child)}" in response.json()["errors"][0]["detail"]
    await assert_no_manifest(client, "r", body)

    entry["size"] = len(child)
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    ).encode()
    assert (await put_manifest(client, body, OCI_INDEX)).status_code == 201


async def test_a_size_mismatch_wins_over_a_missing_blob(
    client: httpx.AsyncClient,
) -> None:
    config = b"{}"
    await push_blob(client, "r", config)
    document = json.loads(image_manifest(config, [b"never uploaded"]))
    document["config"]["size"] = 99
    response = await put_manifest(client, json.dumps(document).encode())
    assert_error(response, 400, "MANIFEST_INVALID")


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "application/octet-stream", OCI_INDEX],
)
async def test_content_type_contradicting_the_media_type_is_invalid(
    client: httpx.AsyncClient, content_type: str
) -> None:
    await push_blob(client, "r", b"{}")
    body = image_manifest(b"{}", [])
    assert_error(
        await put_manifest(client, body, content_type), 400, "MANIFEST_INVALID"
    )
    await assert_no_manifest(client, "r", body)
    # Without a Content-Type the body's mediaType decides (some clients send none).
    assert (await put_manifest(client, body, None)).status_code == 201


async def test_manifest_without_media_type_needs_a_manifest_content_type(
    client: httpx.AsyncClient,
) -> None:
    await push_blob(client, "r", b"{}")
    document = json.loads(image_manifest(b"{}", []))
    del document["mediaType"]
    body = json.dumps(document).encode()
    response = await put_manifest(client, body, "application/json")
    assert_error(response, 400, "MANIFEST_INVALID")
    await assert_no_manifest(client, "r", body)
    assert (await put_manifest(client, body, OCI_MANIFEST)).status_code == 201


# --- upload chunks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_range", "length"),
    [
        ("garbage", None),
        ("9-0", None),
        ("0-", None),
        ("bytes=a-b", None),
        ("-5", None),
        ("0-99999999999999999999x", None),
        ("6-10", None),  # out of order: the upload holds bytes 0-4
        ("5-9", 3),  # in order, but Content-Length disagrees
    ],
)
async def test_every_416_on_patch_carries_the_upload_progress(
    client: httpx.AsyncClient, content_range: str, length: int | None
) -> None:
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    first = await client.patch(location, content=b"12345")
    assert first.headers["Range"] == "0-4"
    headers = {"Content-Range": content_range}
    if length is not None:
        headers["Content-Length"] = str(length)
    response = await client.patch(
        location, content=b"x" * (length or 5), headers=headers
    )
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response.headers["Range"] == "0-4"
    assert response.headers["Location"] == location
    assert response.headers["Docker-Upload-UUID"] == location.rsplit("/", 1)[1]
    assert (await client.get(location)).headers["Range"] == "0-4"
