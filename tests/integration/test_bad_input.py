"""Bad input over the whole app: the spec's error, never a 5xx, nothing partial left.

Manifests nested too deep or with duplicate keys, descriptors whose size is wrong,
bodies larger than the registry accepts, invalid ``Range`` headers on blob reads, and
bad ``Content-Range`` headers on upload chunks.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
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
from tests.integration.serverproc import ServerProcess

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


@pytest.mark.filesystem_only
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


# --- bodies too large, bodies cut short -----------------------------------------------

HUGE = 1_000_000_000_000_000


class Body:
    """A request body that records whether anyone read it."""

    def __init__(self, data: bytes = b"x" * 1000, pieces: int = 4) -> None:
        self.data, self.pieces, self.read = data, pieces, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        step = max(len(self.data) // self.pieces, 1)
        for start in range(0, len(self.data), step):
            self.read += 1
            yield self.data[start : start + step]


async def open_session(client: httpx.AsyncClient, data: bytes = b"") -> str:
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    if data:
        assert (await client.patch(location, content=data)).status_code == 202
    return str(location)


async def send_huge(client: httpx.AsyncClient, how: str, body: Body) -> httpx.Response:
    headers = {"Content-Length": str(HUGE)}
    digest = digest_of(b"whatever")
    if how == "POST":
        return await client.post(
            "/v2/r/blobs/uploads/",
            params={"digest": digest},
            headers=headers,
            content=body,
        )
    location = await open_session(client, b"12345")
    if how == "PATCH":
        return await client.patch(location, headers=headers, content=body)
    return await client.put(
        location, params={"digest": digest}, headers=headers, content=body
    )


def assert_uploads_on_disk(data_dir: Path, expected: int) -> None:
    uploads = list((data_dir / "storage" / "uploads").iterdir())
    assert len(uploads) == expected, uploads


@pytest.mark.parametrize("how", ["POST", "PATCH", "PUT"])
async def test_content_length_above_the_limit_is_413_before_reading(
    make_client: Callable[..., Any], how: str
) -> None:
    client = await make_client(registry={"max_blob_bytes": 1000})
    body = Body()
    response = await send_huge(client, how, body)
    assert_error(response, 413, "SIZE_INVALID")
    assert "the limit is 1000" in response.json()["errors"][0]["detail"]
    assert body.read == 0
    assert (
        await client.head(f"/v2/r/blobs/{digest_of(b'whatever')}")
    ).status_code == 404


@pytest.mark.filesystem_only
@pytest.mark.parametrize("how", ["POST", "PATCH", "PUT"])
async def test_content_length_above_free_space_is_413_without_a_limit(
    client: httpx.AsyncClient, how: str
) -> None:
    body = Body()
    response = await send_huge(client, how, body)  # a petabyte: no test disk has it
    assert_error(response, 413, "SIZE_INVALID")
    assert "no room" in response.json()["errors"][0]["detail"]
    assert body.read == 0


async def test_the_limit_counts_what_the_upload_already_holds(
    make_client: Callable[..., Any],
) -> None:
    client = await make_client(registry={"max_blob_bytes": 10})
    location = await open_session(client, b"123456")
    response = await client.patch(location, content=b"12345")
    assert_error(response, 413, "SIZE_INVALID")
    assert "would hold 11 bytes" in response.json()["errors"][0]["detail"]
    assert (await client.get(location)).headers["Range"] == "0-5"
    assert (await client.patch(location, content=b"7890")).headers["Range"] == "0-9"
    done = await client.put(location, params={"digest": digest_of(b"1234567890")})
    assert done.status_code == 201


@pytest.mark.parametrize("how", ["PATCH", "PUT"])
async def test_a_body_of_unknown_length_is_cut_at_the_limit(
    make_client: Callable[..., Any], how: str
) -> None:
    client = await make_client(registry={"max_blob_bytes": 1000})
    location = await open_session(client, b"12345")
    body = Body(b"y" * 2000, pieces=20)  # no Content-Length: chunked
    digest = digest_of(b"12345" + body.data)
    if how == "PATCH":
        response = await client.patch(location, content=body)
    else:
        response = await client.put(location, params={"digest": digest}, content=body)
    assert_error(response, 413, "SIZE_INVALID")
    assert body.read < 20
    assert (await client.get(location)).headers["Range"] == "0-4"
    assert (await client.head(f"/v2/r/blobs/{digest}")).status_code == 404


@pytest.mark.filesystem_only
async def test_a_failed_single_request_upload_leaves_no_session(
    client: httpx.AsyncClient, settings_factory: Callable[..., Settings]
) -> None:
    data_dir = settings_factory().data_dir
    wrong = digest_of(b"other")
    response = await client.post(
        "/v2/r/blobs/uploads/", params={"digest": wrong}, content=b"data"
    )
    assert_error(response, 400, "DIGEST_INVALID")
    response = await client.post(
        "/v2/r/blobs/uploads/",
        params={"digest": digest_of(b"data")},
        content=b"data and more",
        headers={"Content-Length": "4"},
    )
    assert response.status_code == 400
    assert_uploads_on_disk(data_dir, 0)


@pytest.mark.filesystem_only
@pytest.mark.parametrize("how", ["POST", "PATCH", "PUT", "manifest"])
async def test_client_gone_mid_body_is_no_server_error(
    app: ASGIApp, settings_factory: Callable[..., Settings], how: str
) -> None:
    async with client_of(app) as client:
        location = await open_session(client, b"12345")
    path = {
        "POST": f"/v2/r/blobs/uploads/?digest={digest_of(b'x' * 1000)}",
        "PATCH": location,
        "PUT": f"{location}?digest={digest_of(b'12345' + b'x' * 1000)}",
        "manifest": "/v2/r/manifests/t",
    }[how]
    method = {"POST": "POST", "PATCH": "PATCH"}.get(how, "PUT")
    sent = await asgi_request(
        app,
        method,
        path,
        headers={"Content-Length": "1000", "Content-Type": OCI_MANIFEST},
        # 100 of 1000 bytes, then the server sees the client hang up.
        body=[{"type": "http.request", "body": b"x" * 100, "more_body": True}],
    )
    assert sent[0]["status"] == 400
    assert b"SIZE_INVALID" in b"".join(m.get("body", b"") for m in sent[1:])
    async with client_of(app) as client:
        assert (await client.get(location)).headers["Range"] == "0-4"
    assert_uploads_on_disk(settings_factory().data_dir, 1)


DISCONNECTED = "client disconnected before its request body was complete"


def _send_short_and_close(port: int, request_line: str, declared: int) -> bytes:
    """Send a tenth of a ``declared``-byte body and hang up; what the server said."""
    head = [request_line, "Host: 127.0.0.1", f"Content-Length: {declared}"]
    head.append("Content-Type: application/octet-stream")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.sendall(b"z" * (declared // 10))
        # Half-close: the server reads the partial body, then end of stream.
        sock.shutdown(socket.SHUT_WR)
        return sock.recv(65536)  # its answer, or b"" if it just closed


def _wait_for_log(server: ServerProcess, text: str, count: int) -> None:
    """Until ``text`` is logged ``count`` times: the request's handling has ended."""
    deadline = time.monotonic() + 10
    while server.log_path.read_text().count(text) < count:
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)


def test_short_body_then_close_against_a_real_server(server: ServerProcess) -> None:
    """What ASGITransport cannot do: a socket that closes mid-body (granian)."""
    server.start()
    uploads = server.data_dir / "storage" / "uploads"
    declared = 1_000_000
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        started = client.post("/v2/r/blobs/uploads/")
        location = started.headers["Location"]
        assert client.patch(location, content=b"12345").status_code == 202
        whole = digest_of(b"12345" + b"z" * declared)
        lines = (
            f"PUT {location}?digest={whole} HTTP/1.1",
            f"PATCH {location} HTTP/1.1",
            f"POST /v2/r/blobs/uploads/?digest={digest_of(b'z' * declared)} HTTP/1.1",
            "PUT /v2/r/manifests/t HTTP/1.1",
        )
        for handled, line in enumerate(lines, start=1):
            answer = _send_short_and_close(server.port, line, declared)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer[:200]
            _wait_for_log(server, DISCONNECTED, handled)
            status = client.get(location)
            assert status.status_code == 204, status.text
            assert status.headers["Range"] == "0-4"
        assert client.head(f"/v2/r/blobs/{whole}").status_code == 404
        assert client.get("/v2/r/manifests/t").status_code == 404
        assert [p.name for p in uploads.iterdir()] == [location.rsplit("/", 1)[1]]
    server.terminate()
    log = server.log_path.read_text()
    assert "unhandled error" not in log
    assert "Traceback" not in log
    assert log.count(DISCONNECTED) == 4


def test_a_petabyte_content_length_is_refused_before_any_body_is_sent(
    server: ServerProcess,
) -> None:
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        location = client.post("/v2/r/blobs/uploads/").headers["Location"]
    zero = "sha256:" + "0" * 64
    for line in (
        f"POST /v2/r/blobs/uploads/?digest={zero} HTTP/1.1",
        f"PATCH {location} HTTP/1.1",
        f"PUT {location}?digest={zero} HTTP/1.1",
    ):
        for expect in ([], ["Expect: 100-continue"]):
            head = [line, "Host: 127.0.0.1", f"Content-Length: {HUGE}", *expect]
            with socket.create_connection(
                ("127.0.0.1", server.port), timeout=10
            ) as sock:
                sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
                answer = sock.recv(65536)  # headers only were sent: no body is awaited
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
            assert b'"code":"SIZE_INVALID"' in answer
