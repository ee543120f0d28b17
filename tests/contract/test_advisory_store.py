"""The ``AdvisoryStore`` contract (``cargohold.metadata.advisories``), and what the
manifest index writes for it (tag history, advisories following tag moves), plus the
fan-out over a real database, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from cargohold.auth.policy import Principal
from cargohold.metadata import schema as t
from cargohold.metadata.accounts import UserRecord
from cargohold.metadata.advisories import AdvisoryStore, Notice
from cargohold.metadata.outbox import EMAIL, OutboxMessage
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.metadata.sql_accounts import SqlAccountStore
from cargohold.metadata.sql_advisories import SqlAdvisoryStore
from cargohold.metadata.sql_webhooks import SqlWebhookIndex
from cargohold.metadata.store import ManifestRecord
from cargohold.metadata.webhooks import WebhookRecord
from cargohold.oci import mediatypes as mt
from cargohold.oci.digest import Digest
from cargohold.registry.access import AccessService
from cargohold.registry.admin import Conflict
from cargohold.registry.advisories import DAY, AdvisoryService, fanout_message
from cargohold.registry.events import RegistryEvent
from cargohold.registry.webhook_delivery import WebhookDispatcher
from cargohold.settings import AdvisorySettings, AuthSettings
from tests.clock import ManualClock

from .conftest import _migrated

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from cargohold.metadata.database import Database

REPO = "acme/app"
NOW = 1_800_000_000.0
ADMIN = Principal("user", "user:root", is_admin=True)


@dataclass
class Stores:
    db: Database
    meta: SqlMetadataStore
    accounts: SqlAccountStore
    advisories: AdvisoryStore


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[Stores]:
    db = _migrated(database_url)
    # The typed assignment is the conformance check (mypy runs on tests/).
    advisories: AdvisoryStore = SqlAdvisoryStore(db)
    meta = SqlMetadataStore(db)
    try:
        yield Stores(db, meta, SqlAccountStore(db), advisories)
    finally:
        await meta.close()


async def push(stores: Stores, content: bytes, tag: str | None, actor: str) -> str:
    record = ManifestRecord(REPO, str(Digest.of(content)), mt.OCI_MANIFEST, content)
    assert (
        await stores.meta.manifests.put(record, tag=tag, references=[], actor=actor)
        == []
    )
    return record.digest


def insert_pulls(db: Database, rows: Sequence[Mapping[str, Any]]) -> None:
    """``pull_daily`` rows as the pull recorder upserts them (helper A's part)."""
    full = [
        {
            "day": int(r["last_at"] // DAY),
            "kind": r["identity"].split(":", 1)[0],
            "count": 1,
            "repository": REPO,
            "organization": "acme",
        }
        | dict(r)
        for r in rows
    ]
    db.run_sync(lambda conn: conn.execute(sa.insert(t.pull_daily), full))


def document(**changes: object) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "CH-1",
        "title": "openssl",
        "severity": "high",
        "state": "current",
        "description": "",
        "affected": [{"repository": REPO, "digests": [], "tags": ["v1*"]}],
        "fixed_in": "v2",
        "aliases": [],
        "url": None,
    }
    return base | changes


def outbox_rows(db: Database) -> list[tuple[str, str, dict[str, Any]]]:
    query = sa.select(t.outbox.c.key, t.outbox.c.channel, t.outbox.c.payload).order_by(
        t.outbox.c.key
    )
    rows = db.run_sync(lambda conn: conn.execute(query).all())
    return [(k, c, json.loads(p)) for k, c, p in rows]


async def test_publish_and_update_keep_every_revision(stores: Stores) -> None:
    store = stores.advisories
    created = await store.create(
        document(), actor="user:root", now=NOW, outbox=[fanout_message("CH-1", 1)]
    )
    assert created is not None
    assert created.revision == 1
    assert await store.create(document(), actor="user:root", now=NOW, outbox=[]) is None
    updated = await store.update(
        document(state="resolved"),
        expected_revision=1,
        actor="user:other",
        now=NOW + 1,
        outbox=[fanout_message("CH-1", 2)],
    )
    assert updated is not None
    assert (updated.revision, updated.state) == (2, "resolved")
    # A second writer that read revision 1 loses.
    assert (
        await store.update(
            document(), expected_revision=1, actor="user:x", now=NOW, outbox=[]
        )
        is None
    )
    revisions = await store.revisions("CH-1")
    assert [(r.revision, r.actor, r.document["state"]) for r in revisions] == [
        (1, "user:root", "current"),
        (2, "user:other", "resolved"),
    ]
    assert [k for k, _, _ in outbox_rows(stores.db)] == [
        "fanout:CH-1:1",
        "fanout:CH-1:2",
    ]
    got = await store.get("CH-1")
    assert got is not None
    assert got.document["state"] == "resolved"
    assert [a.id for a in await store.all()] == ["CH-1"]
    assert await store.get("nope") is None


async def test_tag_globs_resolve_and_follow_moves_but_never_the_fix(
    stores: Stores,
) -> None:
    old = await push(stores, b"one", "v1.0", "user:alice")
    fixed = await push(stores, b"fixed", "v2", "user:alice")
    await push(stores, b"other", "dev", "user:alice")
    store = stores.advisories
    named = str(Digest.of(b"named"))
    affected = [{"repository": REPO, "digests": [named, fixed], "tags": ["v*"]}]
    await store.create(document(affected=affected), actor="u", now=NOW, outbox=[])
    found = {(d.digest, d.via_tag) for d in await store.digests("CH-1")}
    assert found == {(old, "v1.0"), (named, None)}  # v2 is the fix, never affected
    marker = await store.marker()
    # The tag moves: the new target is affected too, in the same transaction.
    moved = await push(stores, b"two", "v1.0", "user:bob")
    found = {(d.digest, d.via_tag) for d in await store.digests("CH-1")}
    assert found == {(old, "v1.0"), (moved, "v1.0"), (named, None)}
    assert await store.marker() != marker
    # A tag that matches no glob changes nothing.
    await push(stores, b"three", "dev", "user:bob")
    assert len(await store.digests("CH-1")) == 3
    # Resolved advisories no longer follow tags.
    await store.update(
        document(affected=affected, state="resolved"),
        expected_revision=1,
        actor="u",
        now=NOW,
        outbox=[],
    )
    await push(stores, b"four", "v1.1", "user:bob")
    assert str(Digest.of(b"four")) not in {
        d.digest for d in await store.digests("CH-1")
    }
    assert await store.warnings() == []


async def test_warnings_list_unresolved_coverage(stores: Stores) -> None:
    digest = await push(stores, b"one", "v1.0", "user:alice")
    await stores.advisories.create(
        document(title='say "hi"'), actor="u", now=NOW, outbox=[]
    )
    rows = await stores.advisories.warnings()
    assert [
        (w.repository, w.digest, w.advisory, w.title, w.fixed_in) for w in rows
    ] == [(REPO, digest, "CH-1", 'say "hi"', "v2")]


async def test_tag_history_records_every_move_with_its_actor(stores: Stores) -> None:
    first = await push(stores, b"one", "latest", "user:alice")
    await push(stores, b"one", "latest", "user:alice")  # not a move
    second = await push(stores, b"two", "latest", "token:t1")
    await push(stores, b"two", "stable", "user:alice")
    assert await stores.meta.manifests.delete_tag(REPO, "stable", actor="user:carol")
    assert await stores.meta.manifests.delete(REPO, second, actor="user:dave")
    moves = await stores.advisories.tag_history(REPO, "latest", limit=10)
    assert [(m.from_digest, m.to_digest, m.actor) for m in moves] == [
        (second, None, "user:dave"),
        (first, second, "token:t1"),
        (None, first, "user:alice"),
    ]
    stable = await stores.advisories.tag_history(REPO, "stable", limit=10)
    assert [(m.from_digest, m.to_digest, m.actor) for m in stable] == [
        (second, None, "user:carol"),
        (None, second, "user:alice"),
    ]
    assert len(await stores.advisories.tag_history(REPO, "latest", limit=1)) == 1


async def test_affected_resolves_contacts_in_one_query(stores: Stores) -> None:
    digest = await push(stores, b"one", "v1.0", "user:alice")
    other = await push(stores, b"other", "dev", "user:alice")
    accounts = stores.accounts
    await accounts.organizations.create("acme")
    assert await accounts.organizations.set_contact("acme", "sec@acme.test")
    for name, email in (("alice", "alice@acme.test"), ("bob", None)):
        await accounts.users.create(UserRecord(name, "hash", False, False, NOW))
        await accounts.users.set_email(name, email)
    insert_pulls(
        stores.db,
        [
            {"identity": "user:alice", "digest": digest, "last_at": NOW - 10},
            {"identity": "user:alice", "digest": digest, "last_at": NOW - 2 * DAY},
            {"identity": "user:bob", "digest": digest, "last_at": NOW - 5},
            {"identity": "token:t1", "digest": digest, "last_at": NOW - 7},
            {"identity": "anonymous:10.0.0.0/24", "digest": digest, "last_at": NOW},
            {"identity": "user:carol", "digest": other, "last_at": NOW},
            {"identity": "user:old", "digest": digest, "last_at": NOW - 100 * DAY},
        ],
    )
    await stores.advisories.create(document(), actor="u", now=NOW, outbox=[])
    found = await stores.advisories.affected("CH-1", NOW - 90 * DAY)
    shown = [(a.identity, a.organization, a.contact, a.last_pull) for a in found]
    assert shown == [
        ("anonymous:10.0.0.0/24", "acme", None, NOW),  # nobody to write to
        ("token:t1", "acme", "sec@acme.test", NOW - 7),
        ("user:alice", "acme", "alice@acme.test", NOW - 10),
        ("user:bob", "acme", "sec@acme.test", NOW - 5),
    ]
    assert {i.digest for a in found for i in a.images} == {digest}


async def test_deliver_inserts_each_notice_once(stores: Stores) -> None:
    notices = [Notice(f"user:u{i}", "CH-1", 1, {"advisory": "CH-1"}) for i in range(3)]
    mail = [OutboxMessage("email:CH-1:1:a@b.test", EMAIL, {"to": "a@b.test"})]
    assert await stores.advisories.deliver(notices, mail, now=NOW) == 3
    assert await stores.advisories.deliver(notices, mail, now=NOW) == 0
    assert len(outbox_rows(stores.db)) == 1


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[RegistryEvent] = []

    async def wants(self, event_type: str) -> bool:
        return True

    async def emit(self, events: Sequence[RegistryEvent]) -> None:
        self.events.extend(events)


@dataclass(frozen=True)
class Item:
    payload: dict[str, Any]


async def test_fan_out_tells_each_affected_identity_once(stores: Stores) -> None:
    digest = await push(stores, b"one", "v1.0", "user:alice")
    other = await push(stores, b"other", "dev", "user:alice")
    await stores.accounts.organizations.create("acme")
    await stores.accounts.organizations.set_contact("acme", "sec@acme.test")
    clock = ManualClock(NOW)
    insert_pulls(
        stores.db,
        [
            {"identity": f"token:t{i}", "digest": digest, "last_at": NOW - i}
            for i in range(50)
        ]
        + [
            {"identity": "user:carol", "digest": other, "last_at": NOW},
            {"identity": "anonymous:1.2.3.4", "digest": digest, "last_at": NOW},
        ],
    )
    sink = RecordingSink()
    service = AdvisoryService(
        stores.advisories,
        AccessService(stores.accounts, AuthSettings()),
        AdvisorySettings(),
        events=sink,
        clock=clock,
    )
    record = await service.publish(ADMIN, document())
    with pytest.raises(Conflict):
        await service.publish(ADMIN, document())
    item = Item({"advisory": record.id, "revision": 1})
    await service.fan_out(item)
    await service.fan_out(item)  # a retried fan-out changes nothing

    def notices(conn: sa.Connection) -> list[tuple[str, int, str]]:
        n = t.notices
        query = sa.select(n.c.identity, n.c.revision, n.c.document).order_by(
            n.c.identity
        )
        return [tuple(r) for r in conn.execute(query)]

    rows = stores.db.run_sync(notices)
    assert len(rows) == 50
    assert {identity for identity, _, _ in rows} == {f"token:t{i}" for i in range(50)}
    assert json.loads(rows[0][2]) == {
        "advisory": "CH-1",
        "title": "openssl",
        "severity": "high",
        "state": "current",
        "digests": [digest],
        "fixed_in": "v2",
    }
    emails = [(k, p) for k, c, p in outbox_rows(stores.db) if c == EMAIL]
    assert [k for k, _ in emails] == ["email:CH-1:1:sec@acme.test"]
    assert len(emails[0][1]["images"]) == 50
    assert {e.id for e in sink.events} == {"advisory:CH-1:1:acme"}
    assert [e.type for e in sink.events] == ["advisory.published"] * 2
    # An update is a new revision: told again, as advisory.updated.
    await service.update(ADMIN, "CH-1", {"severity": "critical"})
    await service.fan_out(Item({"advisory": "CH-1", "revision": 2}))
    assert len(stores.db.run_sync(notices)) == 100
    assert sink.events[-1].id == "advisory:CH-1:2:acme"
    assert sink.events[-1].type == "advisory.updated"


class FlakyWebhookIndex(SqlWebhookIndex):
    """The real index, whose webhook list can be made unreadable."""

    fail = False

    async def enabled(self) -> list[WebhookRecord]:
        if self.fail:
            raise OSError("database went away")
        return await super().enabled()


async def test_fan_out_writes_webhook_deliveries_with_its_notices_or_nothing(
    stores: Stores,
) -> None:
    """A fan-out that cannot work out its webhook deliveries fails as a whole (the
    outbox retries it) instead of committing notices and emails and losing the
    webhook events."""
    digest = await push(stores, b"one", "v1.0", "user:alice")
    await stores.accounts.organizations.create("acme")
    await stores.accounts.organizations.set_contact("acme", "sec@acme.test")
    insert_pulls(
        stores.db, [{"identity": "token:t0", "digest": digest, "last_at": NOW}]
    )
    index = FlakyWebhookIndex(stores.db)
    await index.create(
        WebhookRecord(
            id="wh_acme",
            organization="acme",
            url="https://hooks.example/acme",
            events=("advisory.published",),
            repositories=(),
            secret="whsec_" + "A" * 44,
            previous_secret=None,
            previous_until=None,
            batch_pulls=False,
            disabled=False,
            created_by="user:root",
            created_at=NOW,
        )
    )
    service = AdvisoryService(
        stores.advisories,
        AccessService(stores.accounts, AuthSettings()),
        AdvisorySettings(),
        events=WebhookDispatcher(index, refresh_seconds=0.0),
        clock=ManualClock(NOW),
    )
    await service.publish(ADMIN, document())
    item = Item({"advisory": "CH-1", "revision": 1})

    index.fail = True
    with pytest.raises(OSError, match="went away"):
        await service.fan_out(item)
    assert [c for _, c, _ in outbox_rows(stores.db)] == ["fanout"]
    count = sa.select(sa.func.count()).select_from(t.notices)
    assert stores.db.run_sync(lambda conn: conn.execute(count).scalar_one()) == 0

    index.fail = False
    await service.fan_out(item)
    await service.fan_out(item)  # retried: nothing new
    assert [(k, c) for k, c, _ in outbox_rows(stores.db)] == [
        ("email:CH-1:1:sec@acme.test", "email"),
        ("fanout:CH-1:1", "fanout"),
        ("webhook:wh_acme:advisory:CH-1:1:acme", "webhook"),
    ]
    assert stores.db.run_sync(lambda conn: conn.execute(count).scalar_one()) == 1
