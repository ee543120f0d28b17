"""Clients send ``scope`` more than once: every one counts, in any order.

A token asked for ``repository:R:pull`` and ``repository:R:pull,push`` carries one entry
for R with both actions (issuing), and a token that does carry two entries for R is read
as their union (verifying).
"""

from __future__ import annotations

import httpx
import jwt
import pytest

from cargohold.auth.policy import Principal
from cargohold.auth.scopes import Access
from tests.integration.authhelpers import ROOT, bearer, services_of
from tests.integration.helpers import push_image

pytestmark = pytest.mark.anyio

REPO = "acme/app"
PULL, PUSH = f"repository:{REPO}:pull", f"repository:{REPO}:push"
PULL_PUSH = f"repository:{REPO}:pull,push"
DAVE = ("dave", "dave-password-12")


async def _dave(client: httpx.AsyncClient) -> None:
    admin = services_of(client).auth.admin
    await admin.create_organization(ROOT, "acme", client="t")
    await admin.create_user(ROOT, *DAVE, client="t")
    await admin.set_member(ROOT, "acme", "dave", "pusher", client="t")


def _access(token: str) -> list[dict[str, object]]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return list(claims["access"])


async def _can_push_and_list(client: httpx.AsyncClient, token: str) -> None:
    client.headers.update(bearer(token))
    await push_image(client, REPO, "v1")
    listed = await client.get(f"/v2/{REPO}/tags/list")
    assert listed.status_code == 200, listed.text
    assert listed.json()["tags"] == ["v1"]


@pytest.mark.parametrize(
    "scopes",
    [
        [PULL, PULL_PUSH],
        [PULL_PUSH, PULL],
        [PUSH, PULL],
        [PULL, PUSH],
        [f"{PULL} {PUSH}"],
        [PUSH, f"{PULL} {PULL}"],
    ],
)
async def test_get_token_merges_repeated_scopes(
    auth_client: httpx.AsyncClient, scopes: list[str]
) -> None:
    await _dave(auth_client)
    response = await auth_client.get(
        "/token", params={"service": "cargohold", "scope": scopes}, auth=DAVE
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert _access(token) == [
        {"type": "repository", "name": REPO, "actions": ["pull", "push"]}
    ]
    await _can_push_and_list(auth_client, token)


@pytest.mark.parametrize("scope", [f"{PUSH} {PULL}", f"{PULL} {PULL_PUSH}"])
async def test_post_token_merges_repeated_scopes(
    auth_client: httpx.AsyncClient, scope: str
) -> None:
    await _dave(auth_client)
    response = await auth_client.post(
        "/token",
        data={
            "grant_type": "password",
            "username": DAVE[0],
            "password": DAVE[1],
            "service": "cargohold",
            "scope": scope,
        },
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert len(_access(token)) == 1
    await _can_push_and_list(auth_client, token)


async def test_repeated_catalog_scope_gives_one_entry(
    auth_client: httpx.AsyncClient,
) -> None:
    await _dave(auth_client)
    response = await auth_client.get(
        "/token",
        params={"scope": ["registry:catalog:*", "registry:catalog:*", PULL]},
        auth=DAVE,
    )
    access = _access(response.json()["token"])
    assert access == [
        {"type": "registry", "name": "catalog", "actions": ["*"]},
        {"type": "repository", "name": REPO, "actions": ["pull"]},
    ]
    listing = await auth_client.get(
        "/v2/_catalog", headers=bearer(response.json()["token"])
    )
    assert listing.status_code == 200


@pytest.mark.parametrize("push_first", [False, True])
async def test_a_token_with_two_entries_counts_both(
    auth_client: httpx.AsyncClient, push_first: bool
) -> None:
    """Verification merges entries too, whatever issued the token."""
    await _dave(auth_client)
    entries = [
        Access("repository", REPO, ("pull",), ("v*",)),
        Access("repository", REPO, ("push",)),
    ]
    if push_first:
        entries.reverse()
    token, _ = services_of(auth_client).auth.issuer.issue(
        Principal("user", "user:dave"), entries
    )
    # The push entry has no tag limit, which lifts the pull entry's limit.
    await _can_push_and_list(auth_client, token)
