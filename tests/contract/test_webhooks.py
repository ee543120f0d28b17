"""Webhooks on SQLite and PostgreSQL: the store, the dispatcher's outbox messages, and
delivery to a real loopback receiver, verified with ``standardwebhooks`` and parsed
with ``cloudevents``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import sqlalchemy as sa
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks import Webhook, WebhookVerificationError

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.outbox import OutboxMessage, payload_of
from cargohold.metadata.sql_accounts import SqlAccountStore
from cargohold.metadata.sql_webhooks import SqlWebhookIndex
from cargohold.metadata.webhooks import DeliveryRecord, WebhookIndex, WebhookRecord
from cargohold.registry.events import RegistryEvent
from cargohold.registry.webhook_delivery import (
    WebhookDeliveryFailed,
    WebhookDispatcher,
    WebhookSender,
    message_id,
    new_secret,
)
from cargohold.settings import WebhookSettings
from tests.clock import ManualClock
from tests.webhook_receiver import Receiver, serve

pytestmark = pytest.mark.anyio

ALLOW = WebhookSettings(allow_private_networks=True, timeout_seconds=5.0)


@dataclass(frozen=True)
class Item:
    """An outbox item as the outbox hands it to a handler."""

    id: int
    key: str
    channel: str
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


@pytest.fixture
def index(db: Database) -> WebhookIndex:
    # The typed return is the conformance check (mypy runs on tests/).
    return SqlWebhookIndex(db)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def hook(
    webhook_id: str = "wh_a",
    *,
    organization: str | None = "acme",
    url: str = "http://127.0.0.1:9/hook",
    events: tuple[str, ...] = ("push", "tag.moved", "pull", "delete"),
    repositories: tuple[str, ...] = (),
    batch_pulls: bool = False,
    at: float = 1000.0,
) -> WebhookRecord:
    return WebhookRecord(
        id=webhook_id,
        organization=organization,
        url=url,
        events=events,
        repositories=repositories,
        secret=new_secret(),
        previous_secret=None,
        previous_until=None,
        batch_pulls=batch_pulls,
        disabled=False,
        created_by="user:alice",
        created_at=at,
    )


def event(
    event_id: str, kind: str = "push", repository: str | None = "acme/app"
) -> RegistryEvent:
    return RegistryEvent(
        id=event_id,
        type=kind,
        at=1_700_000_000.0,
        actor="user:alice",
        repository=repository,
        organization=repository.split("/")[0] if repository else "acme",
        data={"tag": "v1", "digest": "sha256:" + "a" * 64},
    )


async def outbox_rows(db: Database) -> list[dict[str, Any]]:
    query = sa.select(t.outbox).order_by(t.outbox.c.key)
    rows = await db.read(lambda conn: conn.execute(query).mappings().all())
    return [dict(row) for row in rows]


# -- the store -------------------------------------------------------------------------


async def test_every_change_moves_the_version(index: WebhookIndex) -> None:
    versions = [await index.version()]
    await index.create(hook("wh_a"))
    versions.append(await index.version())
    await index.create(hook("wh_b", organization=None))
    versions.append(await index.version())
    assert await index.set_disabled("wh_a", disabled=True)
    versions.append(await index.version())
    assert await index.rotate("wh_b", new_secret(), previous_until=5000.0)
    versions.append(await index.version())
    assert await index.delete("wh_a")
    versions.append(await index.version())
    assert len(set(versions)) == len(versions)
    # A change to nothing moves nothing.
    assert not await index.delete("wh_a")
    assert not await index.set_disabled("nope", disabled=True)
    assert await index.version() == versions[-1]


async def test_records_round_trip(index: WebhookIndex) -> None:
    record = hook("wh_a", repositories=("acme/app-*",), batch_pulls=True)
    await index.create(record)
    await index.create(hook("wh_wide", organization=None, at=2000.0))
    assert await index.get("wh_a") == record
    assert await index.get("wh_missing") is None
    assert [w.id for w in await index.query("acme")] == ["wh_a"]
    assert [w.id for w in await index.query(None)] == ["wh_wide"]
    assert await index.query("other") == []
    await index.set_disabled("wh_a", disabled=True)
    assert [w.id for w in await index.enabled()] == ["wh_wide"]
    old = record.secret
    await index.rotate("wh_a", "whsec_new", previous_until=99.0)
    rotated = await index.get("wh_a")
    assert rotated is not None
    assert (rotated.secret, rotated.previous_secret) == ("whsec_new", old)
    assert rotated.previous_until == 99.0


async def test_deliveries_page_newest_first_and_go_with_the_webhook(
    index: WebhookIndex,
) -> None:
    await index.create(hook("wh_a"))
    for attempt in range(1, 6):
        await index.record_delivery(
            DeliveryRecord(
                0,
                "wh_a",
                "msg_1",
                "push",
                attempt,
                10.0 + attempt,
                500 if attempt < 5 else 204,
                None,
                1.5,
            )
        )
    first = await index.deliveries("wh_a", before_id=None, limit=2)
    assert [d.attempt for d in first] == [5, 4]
    assert first[0].status_code == 204
    rest = await index.deliveries("wh_a", before_id=first[-1].id, limit=10)
    assert [d.attempt for d in rest] == [3, 2, 1]
    await index.delete("wh_a")
    assert await index.deliveries("wh_a", before_id=None, limit=10) == []


# -- the dispatcher --------------------------------------------------------------------


async def test_dispatcher_enqueues_one_message_per_matching_webhook_and_event(
    db: Database, index: WebhookIndex
) -> None:
    await index.create(hook("wh_org", events=("push",)))
    await index.create(hook("wh_glob", repositories=("acme/lib-*",)))
    await index.create(hook("wh_wide", organization=None, events=("push", "delete")))
    await index.create(hook("wh_other", organization="other"))
    await index.create(replace(hook("wh_off"), disabled=True))
    dispatcher = WebhookDispatcher(index, clock=ManualClock(5000.0))
    pushed, deleted = event("push:1"), event("delete:1", "delete", "acme/lib-x")
    await dispatcher.emit([pushed, deleted])
    keys = [row["key"] for row in await outbox_rows(db)]
    assert keys == [
        "webhook:wh_glob:delete:1",
        "webhook:wh_org:push:1",
        "webhook:wh_wide:delete:1",
        "webhook:wh_wide:push:1",
    ]
    row = (await outbox_rows(db))[1]
    assert row["channel"] == "webhook"
    assert payload_of(row)["event"]["data"]["tag"] == "v1"
    # The same events again (a retried emitter): nothing new.
    await dispatcher.emit([pushed, deleted])
    assert len(await outbox_rows(db)) == 4


async def test_dispatcher_wants_only_the_events_an_enabled_webhook_hears(
    index: WebhookIndex,
) -> None:
    dispatcher = WebhookDispatcher(index)
    assert not await dispatcher.wants("push")
    await index.create(hook("wh_push", events=("push",)))
    await index.create(replace(hook("wh_off", events=("pull",)), disabled=True))
    dispatcher.forget()
    assert await dispatcher.wants("push")
    assert not await dispatcher.wants("pull")  # only a disabled webhook hears pulls


async def test_batched_pulls_go_as_one_message(
    db: Database, index: WebhookIndex
) -> None:
    await index.create(hook("wh_batch", events=("pull",), batch_pulls=True))
    await index.create(hook("wh_each", events=("pull",)))
    dispatcher = WebhookDispatcher(index)
    pulls = [event(f"pull:{n}", "pull") for n in range(3)]
    await dispatcher.emit(pulls)
    rows = await outbox_rows(db)
    batch = [r for r in rows if r["key"].startswith("webhook:wh_batch:")]
    each = [r for r in rows if r["key"].startswith("webhook:wh_each:")]
    assert len(batch) == 1
    assert len(each) == 3
    assert [e["id"] for e in payload_of(batch[0])["events"]] == [
        "pull:0", "pull:1", "pull:2"
    ]  # fmt: skip
    await dispatcher.emit(pulls)
    assert len(await outbox_rows(db)) == 4


async def test_another_process_sees_a_new_webhook_after_the_refresh(
    database_url: str, db: Database, index: WebhookIndex
) -> None:
    ticks = [0.0]
    dispatcher = WebhookDispatcher(index, monotonic=lambda: ticks[0])
    await dispatcher.emit([event("push:0")])  # caches "no webhooks"
    other = Database(database_url)  # another process's connection
    try:
        await SqlWebhookIndex(other).create(hook("wh_late"))
    finally:
        await other.close()
    await dispatcher.emit([event("push:1")])  # within the second: still cached
    ticks[0] = 1.0
    await dispatcher.emit([event("push:2")])
    assert [r["key"] for r in await outbox_rows(db)] == ["webhook:wh_late:push:2"]


class _BrokenOutbox(SqlWebhookIndex):
    async def enqueue(self, messages: Sequence[OutboxMessage], *, now: float) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))


async def test_emit_never_raises(db: Database) -> None:
    broken = _BrokenOutbox(db)
    await broken.create(hook("wh_a"))
    sink = WebhookDispatcher(broken)
    await sink.emit([event("push:1")])  # logged, not raised
    assert await outbox_rows(db) == []


# -- delivery --------------------------------------------------------------------------


async def stored(index: WebhookIndex, record: WebhookRecord) -> WebhookRecord:
    await index.create(record)
    return record


async def test_delivery_is_a_signed_cloudevent(
    index: WebhookIndex, receiver: Receiver
) -> None:
    record = await stored(index, hook(url=receiver.url))
    sender = WebhookSender(index, ALLOW)
    try:
        await sender.deliver(
            Item(
                1,
                "webhook:wh_a:push:1",
                "webhook",
                {"webhook": "wh_a", "event": _json(event("push:1"))},
            )
        )
    finally:
        await sender.close()
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == message_id("webhook:wh_a:push:1")
    Webhook(record.secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)
    assert request.headers["content-type"].startswith("application/cloudevents+json")
    cloud = from_http_event(HTTPMessage(request.headers, request.body))
    assert cloud.get_type() == "dev.cargohold.push"
    assert cloud.get_id() == "push:1"
    assert cloud.get_subject() == "acme/app"
    assert cloud.get_source() == "/cargohold"
    data = cloud.get_data()
    assert isinstance(data, dict)
    assert data["digest"] == "sha256:" + "a" * 64
    assert data["actor"] == "user:alice"
    (logged,) = await index.deliveries("wh_a", before_id=None, limit=10)
    assert (logged.status_code, logged.error, logged.attempt) == (204, None, 1)


def _json(e: RegistryEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "at": e.at,
        "actor": e.actor,
        "repository": e.repository,
        "organization": e.organization,
        "data": dict(e.data),
    }


async def test_failures_are_retryable_and_retries_carry_the_same_id(
    index: WebhookIndex, receiver: Receiver
) -> None:
    record = await stored(index, hook(url=receiver.url))
    receiver.answers = [500, 503]
    sender = WebhookSender(index, ALLOW)
    item = Item(7, "webhook:wh_a:push:1", "webhook",
                {"webhook": "wh_a", "event": _json(event("push:1"))})  # fmt: skip
    try:
        for attempts in range(2):
            with pytest.raises(WebhookDeliveryFailed) as failed:
                await sender.deliver(replace(item, attempts=attempts))
            assert not failed.value.permanent
        await sender.deliver(replace(item, attempts=2))
    finally:
        await sender.close()
    assert [r.status for r in receiver.requests] == [500, 503, 204]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        Webhook(record.secret).verify(request.body, request.headers)
    log = await index.deliveries("wh_a", before_id=None, limit=10)
    assert [(d.attempt, d.status_code) for d in log] == [(3, 204), (2, 503), (1, 500)]
    assert log[-1].error == "receiver answered 500"


async def test_gone_disables_the_webhook(
    index: WebhookIndex, receiver: Receiver
) -> None:
    await stored(index, hook(url=receiver.url))
    receiver.answers = [410]
    sender = WebhookSender(index, ALLOW)
    item = Item(1, "webhook:wh_a:push:1", "webhook",
                {"webhook": "wh_a", "event": _json(event("push:1"))})  # fmt: skip
    try:
        with pytest.raises(WebhookDeliveryFailed) as failed:
            await sender.deliver(item)
        assert failed.value.permanent
        found = await index.get("wh_a")
        assert found is not None
        assert found.disabled
        await sender.deliver(replace(item, attempts=1))  # disabled: nothing sent
    finally:
        await sender.close()
    assert len(receiver.requests) == 1


async def test_both_secrets_sign_during_the_rotation_overlap(
    index: WebhookIndex, receiver: Receiver
) -> None:
    record = await stored(index, hook(url=receiver.url))
    clock = ManualClock(10_000.0)
    new = new_secret()
    await index.rotate("wh_a", new, previous_until=clock.now + 3600)
    sender = WebhookSender(index, ALLOW, clock=clock)
    payload = {"webhook": "wh_a", "event": _json(event("push:1"))}
    try:
        await sender.deliver(Item(1, "webhook:wh_a:push:1", "webhook", payload))
        clock.advance(3601)
        await sender.deliver(Item(2, "webhook:wh_a:push:2", "webhook", payload))
    finally:
        await sender.close()
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(during.body, during.headers)
    Webhook(record.secret).verify(during.body, during.headers)
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(record.secret).verify(after.body, after.headers)


async def test_a_pull_batch_is_a_cloudevents_batch(
    index: WebhookIndex, receiver: Receiver
) -> None:
    record = await stored(index, hook(url=receiver.url, batch_pulls=True))
    pulls = [_json(event(f"pull:{n}", "pull")) for n in range(2)]
    sender = WebhookSender(index, ALLOW)
    try:
        await sender.deliver(
            Item(
                1,
                "webhook:wh_a:pulls:x",
                "webhook",
                {"webhook": "wh_a", "events": pulls},
            )
        )
    finally:
        await sender.close()
    (request,) = receiver.requests
    assert request.headers["content-type"] == "application/cloudevents-batch+json"
    Webhook(record.secret).verify(request.body, request.headers)
    documents = json.loads(request.body)
    events = [
        from_http_event(
            HTTPMessage(
                {"content-type": "application/cloudevents+json"},
                json.dumps(d).encode(),
            )
        )
        for d in documents
    ]
    assert [e.get_id() for e in events] == ["pull:0", "pull:1"]
    assert {e.get_type() for e in events} == {"dev.cargohold.pull"}


async def test_a_private_address_is_refused_at_delivery(
    index: WebhookIndex, receiver: Receiver
) -> None:
    # Stored as if allowed then, or as a name that resolves to loopback now.
    await stored(index, hook(url=receiver.url.replace("127.0.0.1", "localhost")))
    sender = WebhookSender(index, WebhookSettings())
    try:
        with pytest.raises(WebhookDeliveryFailed) as failed:
            await sender.deliver(
                Item(
                    1,
                    "webhook:wh_a:push:1",
                    "webhook",
                    {"webhook": "wh_a", "event": _json(event("push:1"))},
                )
            )
    finally:
        await sender.close()
    assert failed.value.permanent
    assert receiver.requests == []
    (logged,) = await index.deliveries("wh_a", before_id=None, limit=10)
    assert logged.status_code is None
    assert logged.error is not None
    assert "non-public" in logged.error


async def test_enqueue_is_idempotent(db: Database, index: WebhookIndex) -> None:
    message = OutboxMessage("webhook:wh_a:e1", "webhook", {"webhook": "wh_a"})
    await index.enqueue([message], now=1.0)
    await index.enqueue([message, replace(message, key="webhook:wh_a:e2")], now=2.0)
    assert [r["key"] for r in await outbox_rows(db)] == [
        "webhook:wh_a:e1",
        "webhook:wh_a:e2",
    ]


async def test_deleting_an_organization_deletes_its_webhooks(
    db: Database, index: WebhookIndex
) -> None:
    accounts = SqlAccountStore(db)
    assert await accounts.organizations.create("acme")
    await index.create(hook("wh_acme"))
    await index.create(hook("wh_wide", organization=None))
    await index.record_delivery(
        DeliveryRecord(0, "wh_acme", "msg_1", "push", 1, 1.0, 204, None, 1.0)
    )
    before = await index.version()
    assert await accounts.organizations.delete("acme")
    assert await index.get("wh_acme") is None
    assert await index.deliveries("wh_acme", before_id=None, limit=10) == []
    assert [w.id for w in await index.enabled()] == ["wh_wide"]
    assert await index.version() != before
    # A new organization of that name starts with no webhooks.
    assert await accounts.organizations.create("acme")
    assert await index.query("acme") == []
