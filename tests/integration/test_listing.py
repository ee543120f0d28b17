"""Tag listing and the catalog, with pagination."""

from __future__ import annotations

import httpx
import pytest

from tests.apptypes import MakeClient
from tests.integration.helpers import assert_error, push_image

pytestmark = pytest.mark.anyio


async def _tagged(client: httpx.AsyncClient, repo: str, tags: list[str]) -> None:
    _, manifest = await push_image(client, repo, tags[0])
    for tag in tags[1:]:
        response = await client.put(
            f"/v2/{repo}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert response.status_code == 201


async def test_tags_sorted_and_paginated(client: httpx.AsyncClient) -> None:
    await _tagged(client, "r", ["c", "a", "b", "d", "e"])
    full = await client.get("/v2/r/tags/list")
    assert full.json() == {"name": "r", "tags": ["a", "b", "c", "d", "e"]}
    assert "Link" not in full.headers
    page = await client.get("/v2/r/tags/list", params={"n": 2})
    assert page.json()["tags"] == ["a", "b"]
    assert page.headers["Link"] == '</v2/r/tags/list?last=b&n=2>; rel="next"'
    after = await client.get("/v2/r/tags/list", params={"n": 2, "last": "b"})
    assert after.json()["tags"] == ["c", "d"]
    last = await client.get("/v2/r/tags/list", params={"n": 2, "last": "d"})
    assert last.json()["tags"] == ["e"]
    assert "Link" not in last.headers
    zero = await client.get("/v2/r/tags/list", params={"n": 0})
    assert zero.json()["tags"] == []


async def test_huge_n_is_clamped_with_a_link(make_client: MakeClient) -> None:
    client = await make_client(registry={"max_page_size": 3})
    await _tagged(client, "r", ["a", "b", "c", "d"])
    response = await client.get("/v2/r/tags/list", params={"n": 10**12})
    assert response.json()["tags"] == ["a", "b", "c"]
    assert "last=c&n=3" in response.headers["Link"]


@pytest.mark.parametrize("n", ["-1", "abc", "1.5"])
async def test_bad_n(client: httpx.AsyncClient, n: str) -> None:
    await _tagged(client, "r", ["a"])
    response = await client.get("/v2/r/tags/list", params={"n": n})
    assert_error(response, 400, "PAGINATION_NUMBER_INVALID")


async def test_unknown_repository(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v2/nope/tags/list"), 404, "NAME_UNKNOWN")


async def test_catalog(client: httpx.AsyncClient) -> None:
    for repo in ("b/x", "a", "c"):
        await push_image(client, repo, "t")
    response = await client.get("/v2/_catalog")
    assert response.json() == {"repositories": ["a", "b/x", "c"]}
    page = await client.get("/v2/_catalog", params={"n": 1, "last": "a"})
    assert page.json() == {"repositories": ["b/x"]}
    assert page.headers["Link"] == '</v2/_catalog?last=b/x&n=1>; rel="next"'
