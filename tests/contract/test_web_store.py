"""The ``WebStore`` contract (``cargohold.metadata.web``), over every database:
keyset paging and literal search of the catalog, organizations, tag rows, and
sessions (kept by hash, ended by sign-out, expiry, or the user's disabling)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.accounts import UserRecord
from cargohold.metadata.database import Database
from cargohold.metadata.sql_accounts import SqlAccountStore
from cargohold.metadata.sql_web import SqlWebStore
from cargohold.metadata.web import WebStore

pytestmark = pytest.mark.anyio

NOW = 1_780_000_000.0
NAMES = [
    "acme/app",
    "acme/app_2",
    "acme/apple",
    "beta/x",
    "noorg",
    "zeta/deep/name",
]


@pytest.fixture
def store(db: Database) -> WebStore:
    # The typed assignment is the conformance check (mypy runs on tests/).
    web: WebStore = SqlWebStore(db)

    def seed(conn: sa.Connection) -> None:
        conn.execute(
            sa.insert(t.repositories), [{"name": n, "created_at": NOW} for n in NAMES]
        )
        conn.execute(
            sa.insert(t.repository_settings),
            [
                {
                    "repository": "acme/app",
                    "visibility": "public",
                    "starter_tags": json.dumps(["latest", "v*"]),
                    "updated_at": NOW,
                },
                {
                    "repository": "beta/x",
                    "visibility": "private",
                    "starter_tags": None,
                    "updated_at": NOW,
                },
            ],
        )

    db.run_sync(seed)
    return web


async def test_catalog_pages_in_name_order_with_settings(store: WebStore) -> None:
    first = await store.catalog(contains=None, after=None, limit=2)
    assert [r.name for r in first] == ["acme/app", "acme/app_2"]
    assert first[0].visibility == "public"
    assert first[0].starter_tags == ("latest", "v*")
    assert first[1].visibility is None
    assert first[1].starter_tags is None
    rest = await store.catalog(contains=None, after=first[-1].name, limit=100)
    assert [r.name for r in rest] == NAMES[2:]
    assert rest[1].visibility == "private"


async def test_search_is_literal(store: WebStore) -> None:
    async def names(text: str) -> list[str]:
        rows = await store.catalog(contains=text, after=None, limit=100)
        return [r.name for r in rows]

    assert await names("app") == ["acme/app", "acme/app_2", "acme/apple"]
    # "_" and "%" are no wildcards here.
    assert await names("app_") == ["acme/app_2"]
    assert await names("%") == []
    assert await names("deep/") == ["zeta/deep/name"]
    assert await names("acme/") == ["acme/app", "acme/app_2", "acme/apple"]


async def test_prefix_and_visibility_filters(store: WebStore) -> None:
    async def names(**filters: object) -> list[str]:
        rows = await store.catalog(contains=None, after=None, limit=100, **filters)  # type: ignore[arg-type]
        return [r.name for r in rows]

    assert await names(prefix="acme/app") == ["acme/app", "acme/app_2", "acme/apple"]
    assert await names(prefix="acme/app_") == ["acme/app_2"]
    assert await names(prefix="zeta/") == ["zeta/deep/name"]
    assert await names(prefix="%") == []
    assert await names(visibility=("public",)) == ["acme/app"]
    assert await names(visibility=("public", None)) == [
        n for n in NAMES if n != "beta/x"
    ]
    assert await names(visibility=()) == []


async def test_organizations_group_by_first_component(store: WebStore) -> None:
    assert await store.organizations() == [
        ("acme", None),
        ("acme", "public"),
        ("beta", "private"),
        ("zeta", None),
    ]


async def test_sessions(db: Database, store: WebStore) -> None:
    accounts = SqlAccountStore(db)
    await accounts.users.create(UserRecord("paula", "x", False, False, NOW))
    await store.create_session(
        "h1", user="paula", csrf="c1", credential="k1", now=NOW, expires_at=NOW + 60
    )
    await store.create_session(
        "h2", user="paula", csrf="c2", credential="k2", now=NOW, expires_at=NOW + 10
    )
    found = await store.session_user("h1", now=NOW + 1)
    assert found is not None
    assert (found.user, found.is_admin, found.csrf) == ("paula", False, "c1")
    assert (found.credential, found.password_hash) == ("k1", "x")
    assert await store.session_user("nope", now=NOW) is None
    assert await store.session_user("h2", now=NOW + 10) is None  # expired
    assert await store.purge_sessions(now=NOW + 10) == 1
    await store.delete_session("h1")
    assert await store.session_user("h1", now=NOW + 1) is None
    await store.create_session(
        "h3", user="paula", csrf="c3", credential="k3", now=NOW, expires_at=NOW + 60
    )
    await accounts.users.update("paula", disabled=True)
    assert await store.session_user("h3", now=NOW + 1) is None
