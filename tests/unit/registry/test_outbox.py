"""The outbox worker's rules (``cargohold.registry.outbox``) over SQLite in tmp_path."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from cargohold.auth.policy import ANONYMOUS, Principal
from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.outbox import EMAIL, WEBHOOK, OutboxMessage, enqueue_in
from cargohold.metadata.sql_outbox import SqlOutboxStore
from cargohold.oci.errors import Denied
from cargohold.registry.admin import NotFound
from cargohold.registry.outbox import DeliveryFailed, Outbox, OutboxItem, backoff
from cargohold.settings import OutboxSettings
from tests.clock import ManualClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

ADMIN = Principal("user", "user:root", is_admin=True)
USER = Principal("user", "user:alice")
SETTINGS = OutboxSettings(
    batch=4, max_attempts=3, base_delay_seconds=10, max_delay_seconds=25
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    upgrade(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def outbox(db: Database, clock: ManualClock) -> Outbox:
    # No jitter: the retry times are exact.
    return Outbox(SqlOutboxStore(db), SETTINGS, clock=clock, jitter=lambda: 0.0)


def enqueue(db: Database, clock: ManualClock, *keys: str, channel: str = EMAIL) -> None:
    messages = [OutboxMessage(key, channel, {"key": key}) for key in keys]
    db.run_sync(lambda conn: enqueue_in(conn, messages, now=clock()))


def state(db: Database) -> dict[str, tuple[str, int, str | None]]:
    query = sa.select(
        t.outbox.c.key, t.outbox.c.state, t.outbox.c.attempts, t.outbox.c.last_error
    )
    return {
        row.key: (row.state, row.attempts, row.last_error)
        for row in db.run_sync(lambda conn: conn.execute(query).all())
    }


@pytest.mark.parametrize(
    ("attempts", "jitter", "expected"),
    [
        (1, 0.0, 10.0),
        (2, 0.0, 20.0),
        (3, 0.0, 25.0),  # capped
        (200, 0.0, 25.0),  # no overflow
        (1, 0.5, 9.0),
        (2, 0.999, 16.004),
    ],
)
def test_backoff_doubles_up_to_the_maximum(
    attempts: int, jitter: float, expected: float
) -> None:
    assert backoff(attempts, base=10, maximum=25, jitter=jitter) == pytest.approx(
        expected
    )


async def test_drain_delivers_every_due_message_once(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    delivered: list[OutboxItem] = []

    async def handler(item: OutboxItem) -> None:
        delivered.append(item)

    outbox.register(EMAIL, handler)
    keys = [f"email:a:1:u{i}@example.com" for i in range(10)]  # > batch
    enqueue(db, clock, *keys)
    enqueue(db, clock, "webhook:w:e", channel=WEBHOOK)  # no handler here: waits
    assert await outbox.drain(until=clock()) == 10
    assert sorted(item.key for item in delivered) == sorted(keys)
    assert delivered[0].payload == {"key": delivered[0].key}
    assert {s for s, _, _ in state(db).values()} == {"done", "pending"}
    assert state(db)["webhook:w:e"] == ("pending", 0, None)
    assert await outbox.drain(until=clock()) == 0


async def test_failures_back_off_then_die(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    calls: list[int] = []

    async def flaky(item: OutboxItem) -> None:
        calls.append(item.attempts)
        raise DeliveryFailed("421 busy")

    outbox.register(EMAIL, flaky)
    enqueue(db, clock, "email:a:1:x@example.com")
    assert await outbox.drain(until=clock()) == 1
    assert state(db)["email:a:1:x@example.com"] == ("pending", 1, "421 busy")
    clock.advance(9.9)
    assert await outbox.drain(until=clock()) == 0  # not due before 10 s
    clock.advance(0.1)
    assert await outbox.drain(until=clock()) == 1
    clock.advance(19.9)
    assert await outbox.drain(until=clock()) == 0  # then 20 s
    clock.advance(0.1)
    assert await outbox.drain(until=clock()) == 1
    assert calls == [0, 1, 2]
    assert state(db)["email:a:1:x@example.com"] == ("dead", 3, "421 busy")
    clock.advance(3600)
    assert await outbox.drain(until=clock()) == 0


async def test_permanent_failures_and_bugs(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    async def handler(item: OutboxItem) -> None:
        if item.key.endswith("bad"):
            raise DeliveryFailed("550 no such user", permanent=True)
        raise KeyError("boom")

    outbox.register(EMAIL, handler)
    enqueue(db, clock, "email:bad", "email:bug")
    await outbox.drain(until=clock())
    assert state(db)["email:bad"] == ("dead", 1, "550 no such user")
    assert state(db)["email:bug"] == ("pending", 1, "KeyError: 'boom'")


async def test_dead_letters_are_for_admins_and_retry(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    delivered: list[str] = []

    async def handler(item: OutboxItem) -> None:
        if not delivered and item.attempts == 0 and item.key == "email:x":
            delivered.append("refused")
            raise DeliveryFailed("550 mailbox full", permanent=True)
        delivered.append(item.key)

    outbox.register(EMAIL, handler)
    enqueue(db, clock, "email:x")
    await outbox.drain(until=clock())
    with pytest.raises(Denied):
        await outbox.messages(USER, state="dead", after_id=0, limit=10)
    with pytest.raises(Denied):
        await outbox.retry(ANONYMOUS, 1)
    [dead] = await outbox.messages(ADMIN, state="dead", after_id=0, limit=10)
    assert dead.last_error == "550 mailbox full"
    await outbox.retry(ADMIN, dead.id)
    with pytest.raises(NotFound):
        await outbox.retry(ADMIN, dead.id)  # pending now, not dead
    await outbox.drain(until=clock())
    assert delivered == ["refused", "email:x"]
    assert state(db)["email:x"][0] == "done"


async def test_prune_keeps_recent_and_undelivered(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    async def handler(item: OutboxItem) -> None:
        if item.key == "email:fails":
            raise DeliveryFailed("no", permanent=True)

    outbox.register(EMAIL, handler)
    enqueue(db, clock, "email:old", "email:fails")
    await outbox.drain(until=clock())
    clock.advance(SETTINGS.keep_days * 86400 - 1)
    enqueue(db, clock, "email:new")
    await outbox.drain(until=clock())
    assert await outbox.prune() == 0
    clock.advance(2)
    assert await outbox.prune() == 1
    assert set(state(db)) == {"email:fails", "email:new"}


async def test_no_delivery_starts_on_a_lease_about_to_end(
    db: Database, clock: ManualClock
) -> None:
    settings = OutboxSettings(batch=3, concurrency=1, lease_seconds=100)
    outbox = Outbox(SqlOutboxStore(db), settings, clock=clock)
    delivered: list[str] = []

    async def slow(item: OutboxItem) -> None:
        delivered.append(item.key)
        clock.advance(60)  # one slow delivery eats most of the batch's lease

    outbox.register(EMAIL, slow)
    enqueue(db, clock, "email:1", "email:2", "email:3")
    assert await outbox.drain(until=clock()) == 3
    # The second started with 40 s of 100 left; the third had none: left pending.
    assert delivered == ["email:1", "email:2"]
    assert state(db)["email:3"] == ("pending", 0, None)
    assert await outbox.drain(until=clock()) == 1  # its lease has run out: taken again
    assert delivered == ["email:1", "email:2", "email:3"]
