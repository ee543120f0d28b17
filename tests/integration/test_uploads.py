"""Blob uploads: monolithic, single-request, chunked, mount, cancel, and bad input."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.integration.helpers import assert_error, digest_of, push_blob

pytestmark = pytest.mark.anyio


async def test_monolithic_upload(client: httpx.AsyncClient) -> None:
    data = os.urandom(5000)
    started = await client.post("/v2/a/b/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["Location"]
    assert started.headers["Range"] == "0-0"
    finished = await client.put(
        location, params={"digest": digest_of(data)}, content=data
    )
    assert finished.status_code == 201
    assert finished.headers["Location"] == f"/v2/a/b/blobs/{digest_of(data)}"
    assert finished.headers["Docker-Content-Digest"] == digest_of(data)
    fetched = await client.get(f"/v2/a/b/blobs/{digest_of(data)}")
    assert fetched.content == data


async def test_single_request_upload_sha512(client: httpx.AsyncClient) -> None:
    data = b"sha512 content"
    digest = digest_of(data, "sha512")
    response = await client.post(
        "/v2/r/blobs/uploads/", params={"digest": digest}, content=data
    )
    assert response.status_code == 201
    head = await client.head(f"/v2/r/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))


async def test_chunked_upload_with_and_without_content_range(
    client: httpx.AsyncClient,
) -> None:
    chunks = [os.urandom(1000), os.urandom(2000), os.urandom(10)]
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    first = await client.patch(
        location, content=chunks[0], headers={"Content-Range": "0-999"}
    )
    assert first.status_code == 202
    assert first.headers["Range"] == "0-999"
    second = await client.patch(first.headers["Location"], content=chunks[1])
    assert second.headers["Range"] == "0-2999"
    status = await client.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-2999"
    data = b"".join(chunks)
    done = await client.put(
        location, params={"digest": digest_of(data)}, content=chunks[2]
    )
    assert done.status_code == 201
    assert (await client.get(f"/v2/r/blobs/{digest_of(data)}")).content == data


async def test_out_of_order_chunk_is_416_with_current_range(
    client: httpx.AsyncClient,
) -> None:
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    await client.patch(location, content=b"a" * 10, headers={"Content-Range": "0-9"})
    skipped = await client.patch(
        location, content=b"b" * 10, headers={"Content-Range": "20-29"}
    )
    assert_error(skipped, 416, "BLOB_UPLOAD_INVALID")
    assert skipped.headers["Range"] == "0-9"
    retried = await client.patch(
        location, content=b"a" * 10, headers={"Content-Range": "0-9"}
    )
    assert retried.status_code == 416
    assert (await client.get(location)).headers["Range"] == "0-9"


async def test_invalid_content_range_is_416(client: httpx.AsyncClient) -> None:
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    for bad in ("garbage", "9-0", "0-"):
        response = await client.patch(
            location, content=b"x", headers={"Content-Range": bad}
        )
        assert_error(response, 416, "BLOB_UPLOAD_INVALID")


async def test_digest_mismatch_stores_nothing(client: httpx.AsyncClient) -> None:
    data = b"real content"
    wrong = digest_of(b"other content")
    response = await client.post(
        "/v2/r/blobs/uploads/", params={"digest": wrong}, content=data
    )
    assert_error(response, 400, "DIGEST_INVALID")
    assert (await client.head(f"/v2/r/blobs/{wrong}")).status_code == 404
    assert (await client.head(f"/v2/r/blobs/{digest_of(data)}")).status_code == 404


@pytest.mark.parametrize(
    "digest", ["sha256:short", "md5:abc", "sha256:" + "G" * 64, "x"]
)
async def test_malformed_digest_on_finish(
    client: httpx.AsyncClient, digest: str
) -> None:
    response = await client.post(
        "/v2/r/blobs/uploads/", params={"digest": digest}, content=b"x"
    )
    assert_error(response, 400, "DIGEST_INVALID")


async def test_finish_without_digest(client: httpx.AsyncClient) -> None:
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    assert_error(await client.put(location, content=b"x"), 400, "DIGEST_INVALID")


async def test_wrong_content_length_keeps_session_usable(
    client: httpx.AsyncClient,
) -> None:
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    response = await client.patch(
        location, content=b"12345", headers={"Content-Length": "3"}
    )
    assert_error(response, 400, "SIZE_INVALID")
    assert (await client.get(location)).headers["Range"] == "0-0"
    ok = await client.patch(location, content=b"12345")
    assert ok.headers["Range"] == "0-4"
    done = await client.put(location, params={"digest": digest_of(b"12345")})
    assert done.status_code == 201


async def test_cancel_upload(client: httpx.AsyncClient) -> None:
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    assert (await client.delete(location)).status_code == 204
    assert_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.patch(location, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("upload_id", ["nope", "%2E%2E", "0" * 32])
async def test_unknown_upload_ids(client: httpx.AsyncClient, upload_id: str) -> None:
    response = await client.get(f"/v2/r/blobs/uploads/{upload_id}")
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


async def test_encoded_traversal_in_upload_id_matches_no_route(
    client: httpx.AsyncClient,
) -> None:
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await client.request(method, "/v2/r/blobs/uploads/..%2F..%2Fetc")
        assert response.status_code in (404, 405)
        assert "errors" in response.json()


async def test_upload_session_belongs_to_its_repository(
    client: httpx.AsyncClient,
) -> None:
    location = (await client.post("/v2/one/blobs/uploads/")).headers["Location"]
    other = location.replace("/v2/one/", "/v2/two/")
    assert_error(await client.get(other), 404, "BLOB_UPLOAD_UNKNOWN")


async def test_cross_repository_mount(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "src", b"shared layer")
    mounted = await client.post(
        "/v2/dst/blobs/uploads/", params={"mount": digest, "from": "src"}
    )
    assert mounted.status_code == 201
    assert mounted.headers["Location"] == f"/v2/dst/blobs/{digest}"
    assert (await client.get(f"/v2/dst/blobs/{digest}")).content == b"shared layer"


async def test_mount_without_from_when_blob_present(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "src", b"known blob")
    mounted = await client.post("/v2/other/blobs/uploads/", params={"mount": digest})
    assert mounted.status_code == 201


async def test_mount_of_unknown_blob_opens_an_upload(client: httpx.AsyncClient) -> None:
    digest = digest_of(b"never pushed")
    response = await client.post(
        "/v2/dst/blobs/uploads/", params={"mount": digest, "from": "src"}
    )
    assert response.status_code == 202
    assert "/blobs/uploads/" in response.headers["Location"]


async def test_mount_from_repository_that_lacks_the_blob(
    client: httpx.AsyncClient,
) -> None:
    digest = await push_blob(client, "has", b"private bits")
    response = await client.post(
        "/v2/dst/blobs/uploads/", params={"mount": digest, "from": "lacks"}
    )
    assert response.status_code == 202


async def test_out_of_order_last_chunk_is_416_and_keeps_the_session(
    client: httpx.AsyncClient,
) -> None:
    # The last chunk on PUT ?digest= is checked like a PATCH: 416 with the progress,
    # nothing written, the session kept (the OCI conformance suite's "out-of-order and
    # put chunk"). It used to be written anyway, then fail the digest: a 400.
    data = os.urandom(30)
    location = (await client.post("/v2/r/blobs/uploads/")).headers["Location"]
    first = await client.patch(
        location, content=data[:10], headers={"Content-Range": "0-9"}
    )
    assert first.status_code == 202
    skipped = await client.put(
        location,
        params={"digest": digest_of(data)},
        content=data[20:],
        headers={"Content-Range": "20-29"},
    )
    assert_error(skipped, 416, "BLOB_UPLOAD_INVALID")
    assert skipped.headers["Range"] == "0-9"
    assert skipped.headers["Location"] == location
    status = await client.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-9"
    await client.patch(
        location, content=data[10:20], headers={"Content-Range": "10-19"}
    )
    done = await client.put(
        location,
        params={"digest": digest_of(data)},
        content=data[20:],
        headers={"Content-Range": "20-29"},
    )
    assert done.status_code == 201, done.text
    assert (await client.get(f"/v2/r/blobs/{digest_of(data)}")).content == data
