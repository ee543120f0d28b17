"""Bad input over the whole app: the spec's error, never a 5xx, nothing partial left.

Manifests nested too deep or with duplicate keys, descriptors whose size is wrong,
bodies larger than the registry accepts, invalid ``Range`` headers on blob reads, and
bad ``Content-Range`` headers on upload chunks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message

from cargohold.api.app import create_app, open_services
from cargohold.settings import Settings
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


@pytest.fixture
async def app(settings_factory: Callable[..., Settings]) -> AsyncIterator[ASGIApp]:
    """The app itself, for requests httpx cannot make (a server's ASGI extensions)."""
    settings = settings_factory(auth={"mode": "none"})
    services = open_services(settings)
    await services.start()
    yield create_app(settings, services=services)
    await services.close()


def client_of(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
    )


async def asgi_request(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: list[Message] | None = None,
    extensions: dict[str, Any] | None = None,
) -> list[Message]:
    """Call ``app`` as a server would; the messages it sent back.

    ``body`` is what ``receive`` hands out in order, then ``http.disconnect``.
    """
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (k.lower().encode(), v.encode()) for k, v in (headers or {}).items()
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("registry.test", 80),
        "extensions": extensions or {},
    }
    incoming = list(body or [{"type": "http.request", "body": b"", "more_body": False}])
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


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


# --- Range on blob reads --------------------------------------------------------------

BLOB = bytes(range(256)) * 4


@pytest.mark.parametrize(
    "value",
    ["items=0-1", "bytes=abc", "bytes=5-1", "bytes=-5-", "bytes=", "bytes=0-9,5-1"],
)
async def test_invalid_range_is_ignored(client: httpx.AsyncClient, value: str) -> None:
    digest = await push_blob(client, "r", BLOB)
    response = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": value})
    assert response.status_code == 200, response.text
    assert response.content == BLOB
    assert response.headers["Docker-Content-Digest"] == digest
    assert "Content-Range" not in response.headers


@pytest.mark.parametrize("value", ["bytes=1000000-", f"bytes={len(BLOB)}-", "bytes=-0"])
async def test_unsatisfiable_range_is_416(
    client: httpx.AsyncClient, value: str
) -> None:
    digest = await push_blob(client, "r", BLOB)
    response = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": value})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(BLOB)}"


async def test_single_ranges(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "r", BLOB)
    for value, start, end in [
        ("bytes=10-19", 10, 20),
        ("bytes=-5", len(BLOB) - 5, len(BLOB)),
        ("bytes=1000-5000", 1000, len(BLOB)),
        ("bytes=0-9,5-19", 0, 20),  # overlapping ranges merge into one
    ]:
        response = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": value})
        assert response.status_code == 206, value
        assert response.content == BLOB[start:end]
        assert (
            response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(BLOB)}"
        )


async def test_several_ranges_get_a_multipart_answer(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "r", BLOB)
    response = await client.get(
        f"/v2/r/blobs/{digest}", headers={"Range": "bytes=100-109,0-9"}
    )
    assert response.status_code == 206
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    body = response.content
    first, second = body.index(BLOB[0:10]), body.index(BLOB[100:110])
    assert first < second  # sorted by position
    assert f"Content-Range: bytes 0-9/{len(BLOB)}".encode() in body
    assert f"Content-Range: bytes 100-109/{len(BLOB)}".encode() in body


@pytest.mark.parametrize("value", [None, "items=0-1", "bytes=abc", "bytes=5-1"])
async def test_whole_blob_reads_keep_the_pathsend_fast_path(
    app: ASGIApp, value: str | None
) -> None:
    async with client_of(app) as client:
        digest = await push_blob(client, "r", BLOB)
    sent = await asgi_request(
        app,
        "GET",
        f"/v2/r/blobs/{digest}",
        headers={"Range": value} if value else {},
        extensions={"http.response.pathsend": {}},
    )
    assert sent[0]["status"] == 200
    assert [m["type"] for m in sent[1:]] == ["http.response.pathsend"]
