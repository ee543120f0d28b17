"""The ``OutboxStore`` and ``NoticeStore`` contracts (``cargohold.metadata.delivery``).

Each test runs on SQLite and, when configured, PostgreSQL. "Two processes" are two
``Database`` objects on one database: separate engines, separate writer threads.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.delivery import Leased, NoticeStore, OutboxStore, Outcome
from cargohold.metadata.outbox import EMAIL, WEBHOOK, OutboxMessage, enqueue_in
from cargohold.metadata.sql_outbox import SqlNoticeStore, SqlOutboxStore
from tests.delivery import DIGEST, add_notice

NOW = 1_700_000_000.25
LEASE = 60.0
HOLDER_A = "host-a:101:" + "a" * 12
HOLDER_B = "host-b:202:" + "b" * 12


@pytest.fixture
def store(db: Database) -> OutboxStore:
    # The typed assignment is the conformance check (mypy runs on tests/).
    outbox: OutboxStore = SqlOutboxStore(db)
    return outbox


def enqueue(db: Database, count: int, *, channel: str = EMAIL, at: float = NOW) -> None:
    messages = [
        OutboxMessage(f"{channel}:adv-1:1:user{i}@example.com", channel, {"n": i})
        for i in range(count)
    ]
    db.run_sync(lambda conn: enqueue_in(conn, messages, now=at))


def rows(db: Database) -> list[sa.Row[tuple[object, ...]]]:
    query = sa.select(t.outbox).order_by(t.outbox.c.id)
    return list(db.run_sync(lambda conn: conn.execute(query).all()))


async def lease(
    store: OutboxStore,
    holder: str = HOLDER_A,
    *,
    now: float = NOW,
    limit: int = 100,
    channels: tuple[str, ...] = (EMAIL,),
) -> list[Leased]:
    return await store.lease(
        holder, channels, now=now, lease_seconds=LEASE, limit=limit
    )


async def test_lease_takes_due_rows_of_the_channels_oldest_first(
    db: Database, store: OutboxStore
) -> None:
    enqueue(db, 3)
    enqueue(db, 2, channel=WEBHOOK)
    enqueue(db, 1, at=NOW + 10)  # same keys as the first: a no-op
    leased = await lease(store, limit=2)
    assert [item.payload for item in leased] == [{"n": 0}, {"n": 1}]
    assert all(item.channel == EMAIL and item.attempts == 0 for item in leased)
    assert all(item.lease_until == NOW + LEASE for item in leased)
    rest = await lease(store, HOLDER_B)
    assert [item.payload for item in rest] == [{"n": 2}]
    assert await lease(store, HOLDER_B) == []
    assert len(await lease(store, channels=(WEBHOOK,))) == 2
    assert await lease(store, channels=()) == []


async def test_rows_not_yet_due_are_not_leased(
    db: Database, store: OutboxStore
) -> None:
    enqueue(db, 2, at=NOW + 5)
    assert await lease(store) == []
    assert len(await lease(store, now=NOW + 5)) == 2


async def test_two_contenders_never_share_a_row(
    database_url: str, db: Database
) -> None:
    enqueue(db, 60)
    other = Database(database_url)
    try:
        stores = [SqlOutboxStore(db), SqlOutboxStore(other)]
        results = await asyncio.gather(
            *(
                lease(stores[i % 2], f"holder-{i}", limit=7)
                for i in range(12)  # 12 x 7 > 60: some come back short or empty
            )
        )
    finally:
        await other.close()
    ids = [item.id for result in results for item in result]
    assert len(ids) == len(set(ids)) == 60
    holders = {row.holder for row in rows(db)}
    assert len(holders) > 1


async def test_an_expired_lease_is_taken_again(
    db: Database, store: OutboxStore
) -> None:
    enqueue(db, 1)
    first = await lease(store)
    assert await lease(store, HOLDER_B, now=NOW + LEASE - 0.5) == []
    again = await lease(store, HOLDER_B, now=NOW + LEASE)
    assert [item.id for item in again] == [first[0].id]
    assert again[0].attempts == 0  # the first holder never settled


async def test_a_released_lease_is_taken_again_at_once(
    db: Database, store: OutboxStore
) -> None:
    enqueue(db, 2)
    first = await lease(store)
    assert await store.release("someone-else", now=NOW) == 0
    assert await lease(store, HOLDER_B) == []
    assert await store.release(HOLDER_A, now=NOW) == 2
    again = await lease(store, HOLDER_B)
    assert sorted(item.id for item in again) == sorted(item.id for item in first)
    # The first holder's late outcomes no longer count.
    late = Outcome(first[0].id, first[0].lease_until)
    assert await store.settle(HOLDER_A, [late], now=NOW) == 0


async def test_settle_is_conditional_on_still_holding_the_lease(
    db: Database, store: OutboxStore
) -> None:
    enqueue(db, 1)
    [stale] = await lease(store)
    [fresh] = await lease(store, HOLDER_B, now=NOW + LEASE + 1)
    # The slow first holder finishes late: its outcome must not count.
    assert (
        await store.settle(
            HOLDER_A, [Outcome(stale.id, stale.lease_until)], now=NOW + LEASE + 2
        )
        == 0
    )
    assert (
        await store.settle(
            HOLDER_B, [Outcome(fresh.id, stale.lease_until)], now=NOW + LEASE + 2
        )
        == 0
    )  # right holder, wrong lease
    assert rows(db)[0].state == "pending"
    assert (
        await store.settle(
            HOLDER_B, [Outcome(fresh.id, fresh.lease_until)], now=NOW + LEASE + 3
        )
        == 1
    )
    [row] = rows(db)
    assert (row.state, row.attempts, row.holder) == ("done", 1, "")
    # Settling twice does nothing, and a done row is never leased again.
    assert (
        await store.settle(
            HOLDER_B, [Outcome(fresh.id, fresh.lease_until)], now=NOW + LEASE + 4
        )
        == 0
    )
    assert await lease(store, now=NOW + 10 * LEASE) == []


async def test_a_failure_waits_for_its_retry_time(
    db: Database, store: OutboxStore
) -> None:
    enqueue(db, 1)
    [item] = await lease(store)
    retry_at = NOW + 30
    outcome = Outcome(
        item.id, item.lease_until, error="421 try later", retry_at=retry_at
    )
    assert await store.settle(HOLDER_A, [outcome], now=NOW + 1) == 1
    [row] = rows(db)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "421 try later")
    assert row.next_attempt_at == retry_at
    assert await lease(store, now=retry_at - 1) == []
    [again] = await lease(store, HOLDER_B, now=retry_at)
    assert again.attempts == 1


async def test_dead_rows_are_listed_and_retried(
    db: Database, store: OutboxStore
) -> None:
    enqueue(db, 2)
    leased = await lease(store)
    dead = Outcome(leased[0].id, leased[0].lease_until, error="550 no such user")
    done = Outcome(leased[1].id, leased[1].lease_until)
    assert await store.settle(HOLDER_A, [dead, done], now=NOW + 1) == 2
    [record] = await store.messages(state="dead", after_id=0, limit=10)
    assert (record.id, record.state, record.attempts) == (dead.id, "dead", 1)
    assert record.last_error == "550 no such user"
    assert record.key.startswith("email:adv-1:1:")
    assert [r.id for r in await store.messages(state=None, after_id=0, limit=10)] == [
        dead.id,
        done.id,
    ]
    assert await store.messages(state=None, after_id=done.id, limit=10) == []
    assert await lease(store, now=NOW + 10 * LEASE) == []
    assert not await store.retry(done.id, now=NOW + 2)  # only dead rows
    assert await store.retry(dead.id, now=NOW + 2)
    assert not await store.retry(dead.id, now=NOW + 2)
    [again] = await lease(store, now=NOW + 2)
    assert (again.id, again.attempts) == (dead.id, 0)


async def test_prune_deletes_old_done_rows_only(
    db: Database, store: OutboxStore
) -> None:
    enqueue(db, 3)
    leased = await lease(store)
    await store.settle(
        HOLDER_A,
        [Outcome(leased[0].id, leased[0].lease_until)],
        now=NOW + 1,
    )
    await store.settle(
        HOLDER_A,
        [Outcome(leased[1].id, leased[1].lease_until, error="550")],
        now=NOW + 1,
    )
    assert await store.prune(done_before=NOW + 1) == 0
    assert await store.prune(done_before=NOW + 2) == 1
    assert [row.state for row in rows(db)] == ["dead", "pending"]


# -- notices --------------------------------------------------------------------------


async def test_notices_are_per_identity_and_marked_read(db: Database) -> None:
    notices: NoticeStore = SqlNoticeStore(db)
    alice = "user:" + "a" * 60
    first = add_notice(db, alice, "adv-1", at=NOW)
    second = add_notice(db, alice, "adv-2", at=NOW + 1)
    theirs = add_notice(db, "token:" + "f" * 32, "adv-1", at=NOW)
    listed = await notices.for_identity(alice, unread=False, limit=10)
    assert [n.id for n in listed] == [second, first]
    assert listed[1].document["digests"] == [DIGEST]
    assert listed[1].read_at is None
    assert await notices.mark_read(alice, first, now=NOW + 5)
    assert await notices.mark_read(alice, first, now=NOW + 9)  # kept as first read
    assert not await notices.mark_read(alice, theirs, now=NOW + 5)
    assert not await notices.mark_read(alice, 10**9, now=NOW + 5)
    [unread] = await notices.for_identity(alice, unread=True, limit=10)
    assert unread.id == second
    [read] = [n for n in await notices.for_identity(alice, unread=False, limit=10)
              if n.id == first]  # fmt: skip
    assert read.read_at == NOW + 5
    assert await notices.mark_all_read(alice, now=NOW + 6) == 1
    assert await notices.for_identity(alice, unread=True, limit=10) == []
    assert (
        len(await notices.for_identity("token:" + "f" * 32, unread=True, limit=10)) == 1
    )
    assert await notices.for_identity(alice, unread=False, limit=1) != []
