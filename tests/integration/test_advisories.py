"""Contacts, advisories, the Warning header and tag history through the whole app."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.sql import SqlMetadataStore
from tests.integration.authhelpers import ADMIN, as_user, services_of
from tests.integration.helpers import push_image
from tests.integration.test_management_api import (
    PASSWORD,
    Caller,
    add_org,
    add_user,
    login,
)

pytestmark = pytest.mark.anyio

REPO = "acme/app"


@pytest.fixture
async def client(auth_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return auth_client


@pytest.fixture
async def root(client: httpx.AsyncClient) -> Caller:
    return await login(client, *ADMIN)


async def push_as_admin(client: httpx.AsyncClient, tag: str, seed: str) -> str:
    client.headers.update(await as_user(client, REPO, "pull,push", auth=ADMIN))
    try:
        digest, _ = await push_image(client, REPO, tag, seed=seed)
    finally:
        del client.headers["Authorization"]
    return digest


def document(**changes: object) -> dict[str, Any]:
    return {
        "id": "CH-2026-1",
        "title": 'libfoo "bar" overflow',
        "severity": "high",
        "state": "current",
        "description": "Upgrade.",
        "affected": [{"repository": REPO, "tags": ["1.*"]}],
        "fixed_in": f"{REPO}:2.0",
        "aliases": ["CVE-2026-0001"],
        "url": "https://example.org/CH-2026-1",
    } | changes


async def test_contacts_are_validated_and_shown(client: httpx.AsyncClient) -> None:
    root = await login(client, *ADMIN)
    await add_org(root, "acme")
    await add_user(root, "alice")
    await add_user(root, "bob")
    await root.ok("PUT", "/orgs/acme/members/alice", {"role": "owner"})
    alice = await login(client, "alice")
    bob = await login(client, "bob")
    # Users set their own address; admins anyone's; nobody else's.
    assert await bob.ok("PUT", "/users/bob/email", {"email": "bob@acme.test"}) == {
        "name": "bob",
        "email": "bob@acme.test",
    }
    await bob.refused(
        "PUT", "/users/alice/email", {"email": "x@acme.test"}, status=403, code="DENIED"
    )
    for garbage in ("bob", "bob@", "a b@acme.test", "Bob <bob@acme.test>", "x@y", 3):
        await root.refused(
            "PUT",
            "/users/bob/email",
            {"email": garbage},
            status=400,
            code="INVALID_REQUEST",
        )
    await root.ok("PUT", "/users/alice/email", {"email": "alice@acme.test"})
    # Each reads their own back (GET /users is for administrators).
    assert await alice.ok("GET", "/me") == {
        "identity": "user:alice",
        "kind": "user",
        "admin": False,
        "email": "alice@acme.test",
        "organizations": ["acme"],
    }
    assert (await bob.ok("GET", "/me"))["email"] == "bob@acme.test"
    anonymous = await client.get("/api/v1/me")
    assert anonymous.status_code == 401
    users = {u["name"]: u["email"] for u in await root.ok("GET", "/users")}
    assert users == {"root": None, "alice": "alice@acme.test", "bob": "bob@acme.test"}
    # Organization owners set its security contact.
    await alice.ok("PUT", "/orgs/acme/contact", {"security_contact": "sec@acme.test"})
    await bob.refused(
        "PUT",
        "/orgs/acme/contact",
        {"security_contact": "x@y.test"},
        status=403,
        code="DENIED",
    )
    await alice.refused(
        "PUT",
        "/orgs/acme/contact",
        {"security_contact": "no"},
        status=400,
        code="INVALID_REQUEST",
    )
    assert await root.ok("GET", "/orgs") == [
        {"name": "acme", "security_contact": "sec@acme.test"}
    ]
    await root.ok("PUT", "/orgs/acme/contact", {"security_contact": None})
    assert await root.ok("GET", "/orgs") == [{"name": "acme", "security_contact": None}]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"severity": "urgent"}, "severity must be one of"),
        ({"state": "open"}, "state must be one of"),
        ({"title": ""}, "title must be a non-empty string"),
        ({"id": "no spaces"}, "id must be"),
        ({"affected": []}, "affected must be a non-empty list"),
        ({"affected": [{"repository": "Bad Name", "tags": ["x"]}]}, "not a repository"),
        (
            {"affected": [{"repository": REPO, "digests": ["sha256:12"]}]},
            "not a digest",
        ),
        ({"affected": [{"repository": REPO}]}, "names no digests and no tags"),
        ({"affected": [{"repository": REPO, "tags": ["a b"]}]}, "not a tag glob"),
        ({"fixed_in": "::"}, "fixed_in must be"),
        ({"url": "javascript:alert(1)"}, "url must be"),
        ({"aliases": "CVE-1"}, "aliases must be a list"),
    ],
)
async def test_bad_advisories_are_refused_with_a_reason(
    root: Caller, changes: dict[str, object], message: str
) -> None:
    detail = await root.refused(
        "POST", "/advisories", document(**changes), status=400, code="INVALID_REQUEST"
    )
    assert message in detail


async def test_publish_update_read_and_warn(client: httpx.AsyncClient) -> None:
    root = await login(client, *ADMIN)
    old = await push_as_admin(client, "1.0", "one")
    fixed = await push_as_admin(client, "2.0", "two")
    await add_org(root, "acme")
    await add_org(root, "other")
    for name in ("alice", "mallory"):
        await add_user(root, name)
    await root.ok("PUT", "/orgs/acme/members/alice", {"role": "puller"})
    await root.ok("PUT", "/orgs/other/members/mallory", {"role": "owner"})
    alice = await login(client, "alice")
    mallory = await login(client, "mallory")

    await alice.refused("POST", "/advisories", document(), status=403, code="DENIED")
    published = await root.ok("POST", "/advisories", document(), status=201)
    assert published["revision"] == 1
    assert published["digests"] == [
        {"repository": REPO, "digest": old, "via_tag": "1.0"}
    ]
    await root.refused("POST", "/advisories", document(), status=409, code="CONFLICT")

    # Least privilege: those who may pull the repository see it; others do not.
    assert [a["id"] for a in (await alice.ok("GET", "/advisories"))["advisories"]] == [
        "CH-2026-1"
    ]
    assert await mallory.ok("GET", "/advisories") == {"advisories": []}
    await mallory.refused("GET", "/advisories/CH-2026-1", status=404, code="NOT_FOUND")
    await alice.refused(
        "GET", "/advisories/CH-2026-1/affected", status=403, code="DENIED"
    )

    # The Warning header, for anyone reading it, by tag or digest, GET or HEAD.
    headers = await as_user(client, REPO, "pull", auth=("alice", PASSWORD))
    expected = '299 - "CH-2026-1: libfoo \\"bar\\" overflow; fixed in acme/app:2.0"'
    for reference in ("1.0", old):
        for method in ("GET", "HEAD"):
            response = await client.request(
                method, f"/v2/{REPO}/manifests/{reference}", headers=headers
            )
            assert response.status_code == 200
            assert response.headers.get_list("Warning") == [expected]
    response = await client.get(f"/v2/{REPO}/manifests/2.0", headers=headers)
    assert "Warning" not in response.headers

    # An update is a new revision; resolved advisories warn no more.
    updated = await root.ok(
        "PATCH", "/advisories/CH-2026-1", {"state": "resolved", "severity": "low"}
    )
    assert (updated["revision"], updated["state"], updated["title"]) == (
        2,
        "resolved",
        document()["title"],
    )
    await root.refused(
        "PATCH",
        "/advisories/CH-2026-1",
        {"id": "x"},
        status=400,
        code="INVALID_REQUEST",
    )
    revisions = (await alice.ok("GET", "/advisories/CH-2026-1/revisions"))["revisions"]
    assert [(r["revision"], r["actor"]) for r in revisions] == [
        (1, "user:root"),
        (2, "user:root"),
    ]
    response = await client.get(f"/v2/{REPO}/manifests/1.0", headers=headers)
    assert "Warning" not in response.headers
    assert fixed not in {d["digest"] for d in updated["digests"]}


async def test_affected_lists_who_pulled_within_the_window(
    client: httpx.AsyncClient, root: Caller
) -> None:
    digest = await push_as_admin(client, "1.0", "one")
    await add_org(root, "acme")
    await add_user(root, "alice")
    await root.ok("PUT", "/users/alice/email", {"email": "alice@acme.test"})
    await root.ok("PUT", "/orgs/acme/contact", {"security_contact": "sec@acme.test"})
    now = time.time()
    meta = services_of(client).meta
    assert isinstance(meta, SqlMetadataStore)
    rows = [
        ("user:alice", now - 60),
        ("token:abc", now - 120),
        ("user:gone", now - 100 * 86_400),
    ]
    meta.db.run_sync(
        lambda conn: conn.execute(
            sa.insert(t.pull_daily),
            [
                {
                    "day": int(at // 86_400),
                    "identity": identity,
                    "repository": REPO,
                    "digest": digest,
                    "kind": identity.split(":")[0],
                    "organization": "acme",
                    "count": 1,
                    "last_at": at,
                }
                for identity, at in rows
            ],
        )
    )
    await root.ok("POST", "/advisories", document(), status=201)
    found = (await root.ok("GET", "/advisories/CH-2026-1/affected"))["identities"]
    assert [(i["identity"], i["contact"], i["digests"]) for i in found] == [
        ("token:abc", "sec@acme.test", [digest]),
        ("user:alice", "alice@acme.test", [digest]),
    ]
    await root.refused("GET", "/advisories/nope/affected", status=404, code="NOT_FOUND")


async def test_tag_history_for_those_who_may_pull(
    client: httpx.AsyncClient, root: Caller
) -> None:
    first = await push_as_admin(client, "latest", "one")
    second = await push_as_admin(client, "latest", "two")
    await add_org(root, "acme")
    await add_org(root, "other")
    await add_user(root, "alice")
    await add_user(root, "mallory")
    await root.ok("PUT", "/orgs/acme/members/alice", {"role": "puller"})
    alice = await login(client, "alice")
    mallory = await login(client, "mallory")
    history = (await alice.ok("GET", f"/repositories/{REPO}/tags/latest/history"))[
        "history"
    ]
    assert [(h["from"], h["to"], h["actor"]) for h in history] == [
        (first, second, "user:root"),
        (None, first, "user:root"),
    ]
    never = await alice.ok("GET", f"/repositories/{REPO}/tags/never/history")
    assert never == {"history": []}
    await mallory.refused(
        "GET", f"/repositories/{REPO}/tags/latest/history", status=404, code="NOT_FOUND"
    )
    await alice.refused(
        "GET",
        f"/repositories/{REPO}/tags/bad tag/history",
        status=400,
        code="INVALID_REQUEST",
    )
