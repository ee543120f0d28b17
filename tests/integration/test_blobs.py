"""Blob reads: HEAD, GET, ranges, delete, dedup."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.integration.helpers import assert_error, digest_of, push_blob

pytestmark = pytest.mark.anyio


async def test_head_and_get_headers(client: httpx.AsyncClient) -> None:
    data = os.urandom(3000)
    digest = await push_blob(client, "r", data)
    head = await client.head(f"/v2/r/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "3000"
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.headers["ETag"] == f'"{digest}"'
    assert head.content == b""
    get = await client.get(f"/v2/r/blobs/{digest}")
    assert get.content == data
    assert get.headers["Accept-Ranges"] == "bytes"
    assert get.headers["Content-Type"] == "application/octet-stream"


async def test_range_requests(client: httpx.AsyncClient) -> None:
    data = bytes(range(256)) * 10
    digest = await push_blob(client, "r", data)
    part = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    tail = await client.get(f"/v2/r/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    beyond = await client.get(
        f"/v2/r/blobs/{digest}", headers={"Range": f"bytes={len(data) + 10}-"}
    )
    assert beyond.status_code == 416


async def test_unknown_blob(client: httpx.AsyncClient) -> None:
    digest = digest_of(b"missing")
    assert (await client.head(f"/v2/r/blobs/{digest}")).status_code == 404
    assert_error(await client.get(f"/v2/r/blobs/{digest}"), 404, "BLOB_UNKNOWN")


async def test_blob_is_visible_only_in_linked_repositories(
    client: httpx.AsyncClient,
) -> None:
    digest = await push_blob(client, "mine", b"secret")
    assert_error(await client.get(f"/v2/yours/blobs/{digest}"), 404, "BLOB_UNKNOWN")


async def test_delete_unlinks_only_that_repository(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "a", b"dedup")
    await push_blob(client, "b", b"dedup")
    assert (await client.delete(f"/v2/a/blobs/{digest}")).status_code == 202
    assert_error(await client.get(f"/v2/a/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert (await client.get(f"/v2/b/blobs/{digest}")).content == b"dedup"
    assert_error(await client.delete(f"/v2/a/blobs/{digest}"), 404, "BLOB_UNKNOWN")


@pytest.mark.filesystem_only
async def test_identical_blobs_are_stored_once(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    digest = await push_blob(client, "a", b"same bytes")
    await push_blob(client, "b", b"same bytes")
    hexpart = digest.split(":")[1]
    files = list((tmp_path / "data" / "storage" / "blobs").rglob(hexpart))
    assert len(files) == 1


@pytest.mark.filesystem_only
async def test_damaged_blob_is_unknown_not_served_short(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    digest = await push_blob(client, "r", data)
    (path,) = (tmp_path / "data" / "storage" / "blobs").rglob(digest.split(":")[1])
    path.write_bytes(data[:100])
    assert_error(await client.get(f"/v2/r/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    path.unlink()
    assert_error(await client.get(f"/v2/r/blobs/{digest}"), 404, "BLOB_UNKNOWN")
