"""The ``AccountStore`` contract (``cargohold.metadata.accounts``), over every database.

Each test runs once per database in the ``database_url`` fixture: SQLite in ``tmp_path``
always, PostgreSQL when ``CARGOHOLD_TEST_POSTGRES_URL`` is set. Values are as long as
the services let through (names of 64 characters, subjects with their prefix), since
PostgreSQL enforces column widths that SQLite ignores.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

import anyio
import pytest

from cargohold.metadata.accounts import (
    AuditEvent,
    KeyRecord,
    OidcIdentityRecord,
    PullTokenRecord,
    RefreshTokenRecord,
    RepositorySettingsRecord,
    UserRecord,
)

if TYPE_CHECKING:
    from cargohold.metadata.accounts import AccountStore

# The longest names the admin service accepts (``_check_name``: at most 64).
LONG = "a" * 60 + "-b.c"
assert len(LONG) == 64
NOW = 1_700_000_000.123456


def user(name: str, *, admin: bool = False, disabled: bool = False) -> UserRecord:
    return UserRecord(name, f"$argon2id$hash-of-{name}", admin, disabled, NOW)


def pull_token(
    organization: str,
    *,
    created_at: float = NOW,
    created_by: str = "user:root",
    expires_at: float | None = None,
) -> PullTokenRecord:
    return PullTokenRecord(
        uuid.uuid4().hex,
        organization,
        "f" * 64,
        "deploy",
        created_by,
        created_at,
        expires_at,
        None,
    )


def refresh_token(principal: str, *, at: float = NOW) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        uuid.uuid4().hex, principal, "e" * 64, at, at + 86400, None
    )


# --- users ----------------------------------------------------------------------------


async def test_user_create_get_and_a_taken_name(account_store: AccountStore) -> None:
    users = account_store.users
    assert await users.get("alice") is None
    assert await users.create(user("alice", admin=True)) is True
    assert await users.create(user("alice")) is False  # taken: the first one stays
    assert await users.get("alice") == user("alice", admin=True)
    assert await users.create(user(LONG)) is True
    assert await users.get(LONG) == user(LONG)


async def test_user_update_changes_only_what_is_given(
    account_store: AccountStore,
) -> None:
    users = account_store.users
    await users.create(user("alice"))
    assert await users.update("alice", disabled=True) is True
    assert await users.get("alice") == user("alice", disabled=True)
    new_hash = "$argon2id$new"
    assert await users.update("alice", password_hash=new_hash, is_admin=True) is True
    changed = await users.get("alice")
    assert changed == UserRecord("alice", new_hash, True, True, NOW)
    assert await users.update("alice", disabled=False) is True
    assert (await users.get("alice")) == UserRecord("alice", new_hash, True, False, NOW)
    assert await users.update("alice") is True  # nothing to change: it exists
    assert await users.update("nobody") is False
    assert await users.update("nobody", disabled=True) is False
    assert await users.get("nobody") is None


async def test_users_are_listed_by_name(account_store: AccountStore) -> None:
    for name in ("carol", "alice", "bob-2", "bob", "bob.1"):
        await account_store.users.create(user(name))
    listed = await account_store.users.all()
    assert [u.name for u in listed] == ["alice", "bob", "bob-2", "bob.1", "carol"]
    assert all(u.is_admin is False and u.disabled is False for u in listed)


async def test_deleting_a_user_drops_their_grants_only(
    account_store: AccountStore,
) -> None:
    store = account_store
    await store.users.create(user("alice"))
    await store.grants.add("user:alice", "acme", "*", "owner", None)
    kept = await store.grants.add("user:alice2", "acme", "*", "puller", None)
    assert await store.users.delete("alice") is True
    assert await store.users.delete("alice") is False
    assert await store.users.get("alice") is None
    assert await store.grants.for_principal("user:alice") == []
    assert await store.grants.query() == [kept]


async def test_concurrent_creates_of_one_name_let_exactly_one_win(
    account_store: AccountStore,
) -> None:
    results: list[bool] = []

    async def create(index: int) -> None:
        results.append(await account_store.users.create(user("same", admin=index == 0)))

    async with anyio.create_task_group() as group:
        for index in range(8):
            group.start_soon(create, index)
    assert sorted(results) == [False] * 7 + [True]
    assert [u.name for u in await account_store.users.all()] == ["same"]


# --- organizations --------------------------------------------------------------------


async def test_organizations_create_exist_and_list(account_store: AccountStore) -> None:
    orgs = account_store.organizations
    assert await orgs.exists("acme") is False
    assert await orgs.create("acme") is True
    assert await orgs.create("acme") is False
    assert await orgs.create(LONG) is True
    assert await orgs.create("acme-2") is True
    assert await orgs.exists("acme") is True
    assert await orgs.all() == [LONG, "acme", "acme-2"]  # "aa…" sorts first
    assert await orgs.delete("nothing") is False


async def test_deleting_an_organization_takes_what_belongs_to_it(
    account_store: AccountStore,
) -> None:
    store = account_store
    for org in ("acme", "acme-2"):
        await store.organizations.create(org)
    await store.grants.add("user:alice", "acme", "*", "owner", None)
    other_grant = await store.grants.add("user:alice", "acme-2", "*", "owner", None)
    live, revoked, other = pull_token("acme"), pull_token("acme"), pull_token("acme-2")
    for token in (live, revoked, other):
        await store.pull_tokens.create(token)
    await store.pull_tokens.revoke(revoked.id, 5.0)
    for repository in ("acme/app", "acme-2/app", "acmex/app"):
        await store.repository_settings.put(
            RepositorySettingsRecord(repository, "public", None, NOW)
        )
    before = time.time()

    assert await store.organizations.delete("acme") is True

    assert await store.organizations.all() == ["acme-2"]
    assert await store.grants.query() == [other_grant]
    gone = await store.pull_tokens.get(live.id)
    assert gone is not None
    assert gone.revoked_at is not None
    assert gone.revoked_at >= before
    still = await store.pull_tokens.get(revoked.id)
    assert still is not None
    assert still.revoked_at == 5.0  # an earlier revocation keeps its time
    assert await store.pull_tokens.get(other.id) == other
    # A new organization of the same name must not inherit public repositories.
    assert await store.repository_settings.get("acme/app") is None
    remaining = await store.repository_settings.all()
    assert [r.repository for r in remaining] == ["acme-2/app", "acmex/app"]


# --- grants ---------------------------------------------------------------------------


async def test_grants_round_trip_with_their_tag_limits(
    account_store: AccountStore,
) -> None:
    grants = account_store.grants
    principal = f"user:{LONG}"
    before = time.time()
    unlimited = await grants.add(principal, LONG, f"{LONG}/*", "owner", None)
    limited = await grants.add(principal, LONG, f"{LONG}/app", "puller", ("v*", "1.*"))
    nothing = await grants.add(principal, LONG, f"{LONG}/none", "puller", ())
    assert unlimited.id != limited.id != nothing.id
    assert unlimited.created_at >= before
    assert (unlimited.tags, limited.tags, nothing.tags) == (None, ("v*", "1.*"), ())
    assert await grants.for_principal(principal) == [unlimited, limited, nothing]
    assert await grants.query(principal=principal) == [unlimited, limited, nothing]
    assert await grants.for_principal("user:other") == []


async def test_grant_query_filters_and_removal(account_store: AccountStore) -> None:
    grants = account_store.grants
    a1 = await grants.add("user:a", "acme", "*", "owner", None)
    a2 = await grants.add("user:a", "beta", "*", "puller", None)
    b1 = await grants.add("token:b", "acme", "acme/app", "puller", ("v*",))
    assert await grants.query() == [a1, a2, b1]
    assert await grants.query(organization="acme") == [a1, b1]
    assert await grants.query(organization="acme", principal="user:a") == [a1]
    assert await grants.remove(b1.id) is True
    assert await grants.remove(b1.id) is False
    assert await grants.remove_principal("user:a", "beta") == 1
    assert await grants.query() == [a1]
    await grants.add("user:a", "beta", "*", "puller", None)
    assert await grants.remove_principal("user:a", None) == 2
    assert await grants.remove_principal("user:a", None) == 0
    assert await grants.query() == []


# --- pull tokens ----------------------------------------------------------------------


async def test_pull_tokens_round_trip_and_revoke_once(
    account_store: AccountStore,
) -> None:
    tokens = account_store.pull_tokens
    # The creator's subject carries its prefix: "user:" and a name of 64 characters.
    first = pull_token(LONG, created_by=f"user:{LONG}", expires_at=NOW + 86400)
    second = pull_token(LONG, created_at=NOW + 1)
    elsewhere = pull_token("other")
    for token in (second, elsewhere, first):
        await tokens.create(token)
    assert await tokens.get(first.id) == first
    assert await tokens.get(uuid.uuid4().hex) is None
    assert await tokens.query(LONG) == [first, second]  # by creation time
    assert {t.id for t in await tokens.query(None)} == {
        first.id,
        second.id,
        elsewhere.id,
    }
    assert await tokens.revoke(first.id, NOW + 5) is True
    assert await tokens.revoke(first.id, NOW + 9) is False  # the first revocation holds
    revoked = await tokens.get(first.id)
    assert revoked is not None
    assert revoked.revoked_at == NOW + 5
    assert await tokens.revoke(uuid.uuid4().hex, NOW) is False


# --- OIDC identities ------------------------------------------------------------------


async def test_oidc_identities_round_trip_and_delete_with_their_grants(
    account_store: AccountStore,
) -> None:
    oidc = account_store.oidc
    claims = {"repository": "acme/*", "ref": "refs/heads/main"}
    record = OidcIdentityRecord(
        LONG,
        "https://token.actions.example",
        "cargohold",
        "repo:acme/app:*",
        claims,
        NOW,
    )
    assert await oidc.create(record) is True
    assert await oidc.create(record) is False
    other = OidcIdentityRecord("beta", "https://i.example", "aud", "*", {}, NOW)
    assert await oidc.create(other) is True
    assert await oidc.get(LONG) == record
    assert await oidc.get("missing") is None
    assert await oidc.all() == [record, other]
    await account_store.grants.add(f"oidc:{LONG}", "acme", "acme/*", "pusher", None)
    assert await oidc.delete(LONG) is True
    assert await oidc.delete(LONG) is False
    assert await account_store.grants.for_principal(f"oidc:{LONG}") == []
    assert await oidc.all() == [other]


# --- repository settings --------------------------------------------------------------


async def test_repository_settings_are_upserted(account_store: AccountStore) -> None:
    settings = account_store.repository_settings
    name = f"{LONG}/" + "r" * 150
    assert await settings.get(name) is None
    first = RepositorySettingsRecord(name, "public", ("latest", "3.*"), NOW)
    await settings.put(first)
    assert await settings.get(name) == first
    second = RepositorySettingsRecord(name, "private", None, NOW + 1)
    await settings.put(second)
    assert await settings.get(name) == second
    empty = RepositorySettingsRecord("acme/app", "public", (), NOW)
    await settings.put(empty)
    assert await settings.all() == [second, empty]  # "aa…/r…" < "acme/app"


# --- signing keys ---------------------------------------------------------------------


def key(kid: str, created_at: float, retired_at: float | None = None) -> KeyRecord:
    pem = "-----BEGIN PRIVATE KEY-----\n" + "A" * 200 + "\n-----END PRIVATE KEY-----\n"
    return KeyRecord(kid, "ES256", pem, created_at, retired_at)


async def test_keys_retire_and_purge(account_store: AccountStore) -> None:
    keys = account_store.keys
    old, current, new = key("k-old", 1.0), key("k-cur", 2.0), key("k-new", 3.0)
    for record in (new, old, current):
        await keys.add(record)
    assert await keys.all() == [old, current, new]  # by creation time
    await keys.retire_others("k-new", 10.0)
    retired = {k.kid: k.retired_at for k in await keys.all()}
    assert retired == {"k-old": 10.0, "k-cur": 10.0, "k-new": None}
    await keys.retire_others("k-new", 20.0)  # already retired keys keep their time
    assert {k.kid: k.retired_at for k in await keys.all()} == retired
    assert await keys.purge(10.0) == 0  # strictly before
    assert await keys.purge(10.5) == 2
    assert [k.kid for k in await keys.all()] == ["k-new"]


async def test_key_version_moves_with_every_change(
    account_store: AccountStore,
) -> None:
    keys = account_store.keys
    seen = [await keys.version()]
    assert seen[0] == (0, 0.0, 0.0)
    await keys.add(key("k-a", 1.0))
    seen.append(await keys.version())
    await keys.add(key("k-b", 2.0))
    seen.append(await keys.version())
    assert await keys.version() == seen[-1]  # reading does not move it
    await keys.retire_others("k-b", 5.0)
    seen.append(await keys.version())
    await keys.purge(6.0)
    seen.append(await keys.version())
    assert seen[1:] == [(1, 1.0, 0.0), (2, 2.0, 0.0), (2, 2.0, 5.0), (1, 2.0, 0.0)]


# --- refresh tokens -------------------------------------------------------------------


async def test_refresh_tokens_round_trip_and_revoke_per_principal(
    account_store: AccountStore,
) -> None:
    tokens = account_store.refresh_tokens
    principal = f"user:{LONG}"
    one, two, other = (
        refresh_token(principal),
        refresh_token(principal, at=NOW + 1),
        refresh_token("user:bob"),
    )
    for token in (one, two, other):
        await tokens.create(token)
    assert await tokens.get(one.id) == one
    assert await tokens.get(uuid.uuid4().hex) is None
    assert await tokens.revoke_principal(principal, NOW + 7) == 2
    assert await tokens.revoke_principal(principal, NOW + 9) == 0
    revoked = await tokens.get(two.id)
    assert revoked is not None
    assert revoked.revoked_at == NOW + 7
    assert await tokens.get(other.id) == other


# --- audit log ------------------------------------------------------------------------


async def test_audit_append_and_query_pages(account_store: AccountStore) -> None:
    audit = account_store.audit
    await audit.append()  # nothing: no transaction, no error
    events = [
        AuditEvent(f"user:{i % 2}", "login", f"user:{i % 2}", "ok", "::1", None, at=i)
        for i in range(1, 6)
    ]
    await audit.append(*events)
    await audit.append(
        AuditEvent("user:0", "grant.add", "acme", "denied", "10.0.0.1", '{"k": 1}')
    )
    page = await audit.query(after_id=0, limit=3)
    assert [(e.actor, e.at) for e in page] == [
        ("user:1", 1),
        ("user:0", 2),
        ("user:1", 3),
    ]
    ids = [e.id for e in page]
    assert ids == sorted(ids)
    rest = await audit.query(after_id=ids[-1], limit=100)
    assert len(rest) == 3
    last = rest[-1]
    assert (last.action, last.outcome, last.client, last.detail) == (
        "grant.add", "denied", "10.0.0.1", '{"k": 1}'
    )  # fmt: skip
    assert last.at > 0  # an event without a time gets the time of writing
    mine = await audit.query(after_id=0, limit=100, actor="user:0")
    assert [e.action for e in mine] == ["login", "login", "grant.add"]


async def test_audit_keeps_events_whatever_a_client_sent(
    account_store: AccountStore,
) -> None:
    # A failed login records the username as typed: any length, any character. The
    # event is kept (cut to what the store holds), and so are the others of its batch.
    typed = "x" * 5000 + "é\u2603"
    events = [
        AuditEvent("user:root", "login", "root", "ok", "127.0.0.1", None, at=1),
        AuditEvent(typed, "login", typed, "failed", "f" * 500, typed, at=2),
    ]
    await account_store.audit.append(*events)
    kept = await account_store.audit.query(after_id=0, limit=10)
    assert [e.at for e in kept] == [1, 2]
    assert kept[0].actor == "user:root"
    long = kept[1]
    assert long.actor.startswith("x" * 100)
    assert typed.startswith(long.actor)
    assert typed.startswith(long.target)
    assert long.detail == typed  # detail has no width
    assert "f" * 39 in long.client  # room for any IPv6 address
    assert await account_store.audit.query(after_id=0, limit=10, actor=long.actor)


@pytest.mark.parametrize("limit", [1, 2])
async def test_audit_query_honours_the_limit(
    account_store: AccountStore, limit: int
) -> None:
    await account_store.audit.append(
        *(AuditEvent("a", "login", "a", "ok", "c", at=i) for i in range(1, 4))
    )
    assert len(await account_store.audit.query(after_id=0, limit=limit)) == limit


async def test_keyring_refresh_picks_up_another_process_rotation(
    account_store: AccountStore,
) -> None:
    from cargohold.registry.keyring import KeyRing

    here, there = (
        KeyRing(account_store, algorithm="ES256", retention_hours=1) for _ in range(2)
    )
    first = await here.load()
    assert (await there.load()).accepted.keys() == first.accepted.keys()
    unchanged = await here.refresh()
    assert unchanged.accepted.keys() == first.accepted.keys()
    assert unchanged.active.kid == first.active.kid
    added = await there.rotate()  # another replica rotates
    refreshed = await here.refresh()
    assert added.kid in refreshed.accepted
    # A new key is published at once but signs only after the activation delay.
    assert refreshed.active.kid == first.active.kid
