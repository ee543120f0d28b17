"""The ``PullStore`` contract (``cargohold.metadata.pulls``) and the ``schedules``
lease (``registry/schedules.ScheduleStore``), over every database."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import anyio
import pytest
import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.accounts import PullTokenRecord
from cargohold.metadata.database import Database
from cargohold.metadata.pulls import DAY, PullEvent, PullFilter, PullStore, day_of
from cargohold.metadata.sql_accounts import SqlAccountStore
from cargohold.metadata.sql_pulls import SqlPullStore
from cargohold.metadata.sql_schedules import SqlScheduleStore
from cargohold.registry.pulls import PullService
from cargohold.registry.schedules import Scheduler
from cargohold.settings import PullSettings
from tests.clock import ManualClock

if TYPE_CHECKING:
    from cargohold.registry.schedules import ScheduleStore

NOW = 1_780_000_000.0
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def pull(
    identity: str = "user:alice",
    *,
    at: float = NOW,
    repository: str = "acme/app",
    reference: str = "v1",
    digest: str = DIGEST_A,
    kind: str = "user",
) -> PullEvent:
    return PullEvent(
        at=at,
        identity=identity,
        kind=kind,
        repository=repository,
        reference=reference,
        digest=digest,
        method="GET",
        client="198.51.100.7",
        user_agent="skopeo/1.9.3",
        tool="skopeo",
        tool_version="1.9.3",
        platform="",
    )


@pytest.fixture
def pulls(db: Database) -> PullStore:
    # The typed assignment is the conformance check (mypy runs on tests/).
    store: PullStore = SqlPullStore(db)
    return store


def daily(db: Database) -> list[tuple[object, ...]]:
    query = sa.select(
        t.pull_daily.c.day,
        t.pull_daily.c.identity,
        t.pull_daily.c.digest,
        t.pull_daily.c.organization,
        t.pull_daily.c.count,
        t.pull_daily.c.last_at,
    ).order_by(t.pull_daily.c.day, t.pull_daily.c.identity, t.pull_daily.c.digest)
    return [tuple(row) for row in db.run_sync(lambda c: c.execute(query).all())]


async def test_record_writes_events_and_adds_up_days(
    db: Database, pulls: PullStore
) -> None:
    await pulls.record([pull(at=NOW), pull(at=NOW + 5), pull("user:bob", at=NOW + 1)])
    await pulls.record([pull(at=NOW + 9), pull(at=NOW + DAY, digest=DIGEST_B)])
    day = day_of(NOW)
    assert daily(db) == [
        (day, "user:alice", DIGEST_A, None, 3, NOW + 9),
        (day, "user:bob", DIGEST_A, None, 1, NOW + 1),
        (day + 1, "user:alice", DIGEST_B, None, 1, NOW + DAY),
    ]
    found = await pulls.query(PullFilter(), limit=100)
    assert len(found) == 5
    assert [r.event.at for r in found] == sorted(
        (r.event.at for r in found), reverse=True
    )
    assert found[0].event == pull(at=NOW + DAY, digest=DIGEST_B)


async def test_a_large_flush_writes_every_event_in_order(
    db: Database, pulls: PullStore
) -> None:
    """More events than one statement carries on SQLite (1,000 rows): all of them,
    each with its own values."""
    batch = [pull(f"user:u{n}", at=NOW + n / 1000) for n in range(2345)]
    await pulls.record(batch)
    found = await pulls.query(PullFilter(), limit=1000)
    assert [r.event for r in found] == batch[::-1][:1000]
    assert sum(row[4] for row in daily(db)) == 2345  # type: ignore[misc]


async def test_an_older_batch_keeps_the_latest_time(
    db: Database, pulls: PullStore
) -> None:
    await pulls.record([pull(at=NOW + 50)])
    await pulls.record([pull(at=NOW + 10)])
    assert daily(db) == [(day_of(NOW), "user:alice", DIGEST_A, None, 2, NOW + 50)]


async def test_organization_is_found_when_written(
    db: Database, pulls: PullStore
) -> None:
    accounts = SqlAccountStore(db)
    await accounts.organizations.create("acme")
    await accounts.organizations.create("other")
    await accounts.pull_tokens.create(
        PullTokenRecord("tok1", "other", "hash", "ci", "user:root", NOW, None, None)
    )
    records = await pulls.record(
        [
            pull(),  # acme exists
            pull("user:x", repository="nobody/app"),  # no such organization
            pull("token:tok1", kind="token"),  # the token's organization wins
            pull("token:gone", kind="token"),  # unknown token: the repository's
        ]
    )
    assert [r.organization for r in records] == ["acme", None, "other", "acme"]
    stored = await pulls.query(PullFilter(), limit=10)
    assert sorted(str(r.organization) for r in stored) == [
        "None", "acme", "acme", "other",
    ]  # fmt: skip


async def test_query_filters(pulls: PullStore) -> None:
    await pulls.record(
        [
            pull(at=NOW),
            pull("user:bob", at=NOW + 1, reference=DIGEST_B, digest=DIGEST_B),
            pull(at=NOW + 2, repository="acme/other"),
            pull(at=NOW + 3, repository="acme_x/app"),
            pull("anonymous:198.51.100.0/24", at=NOW + 4, kind="anonymous"),
        ]
    )

    async def times(where: PullFilter) -> list[float]:
        return [r.event.at - NOW for r in await pulls.query(where, limit=100)]

    assert await times(PullFilter(repository="acme/app")) == [4, 1, 0]
    assert await times(PullFilter(digest=DIGEST_B)) == [1]
    assert await times(PullFilter(reference="v1", identity="user:alice")) == [3, 2, 0]
    assert await times(PullFilter(since=NOW + 1, until=NOW + 3)) == [2, 1]
    assert await times(PullFilter(identity="anonymous:198.51.100.0/24")) == [4]
    # "acme_x" is not under "acme/" (the underscore is no wildcard)
    assert await times(PullFilter(namespaces=("acme",))) == [4, 2, 1, 0]
    assert await times(PullFilter(namespaces=("acme_x",))) == [3]
    assert await times(PullFilter(namespaces=())) == []


async def test_pages_are_newest_first_without_gaps(pulls: PullStore) -> None:
    # Equal times too: the id breaks the tie, so no row is skipped or repeated.
    await pulls.record([pull(at=NOW + (i // 3)) for i in range(10)])
    seen = []
    before = None
    for _ in range(10):
        page = await pulls.query(PullFilter(), limit=4, before=before)
        seen.extend(page)
        if len(page) < 4:
            break
        before = (page[-1].event.at, page[-1].id)
    assert len(seen) == 10
    assert len({r.id for r in seen}) == 10
    assert [r.event.at for r in seen] == sorted(
        (r.event.at for r in seen), reverse=True
    )


async def test_pullers_of_a_digest(pulls: PullStore) -> None:
    await pulls.record(
        [
            pull(at=NOW - 100 * DAY),  # before the window
            pull(at=NOW),
            pull(at=NOW + 5),
            pull("token:t1", at=NOW + 7, kind="token"),
            pull("user:carol", at=NOW + 9, digest=DIGEST_B),
        ]
    )
    found = await pulls.pullers(DIGEST_A, since=NOW - 90 * DAY)
    assert [(p.identity, p.count, p.last_at) for p in found] == [
        ("token:t1", 1, NOW + 7),
        ("user:alice", 2, NOW + 5),
    ]


async def test_prune_deletes_in_batches(db: Database, pulls: PullStore) -> None:
    await pulls.record([pull(at=NOW - 100 * DAY + i) for i in range(5)])
    await pulls.record([pull(at=NOW)])
    cutoff_day = day_of(NOW) - 1
    assert await pulls.prune(
        events_before=NOW - 90 * DAY, daily_before=cutoff_day, batch=3
    ) == (3, 1)
    assert await pulls.prune(
        events_before=NOW - 90 * DAY, daily_before=cutoff_day, batch=3
    ) == (2, 0)
    assert await pulls.prune(
        events_before=NOW - 90 * DAY, daily_before=cutoff_day, batch=3
    ) == (0, 0)
    left = await pulls.query(PullFilter(), limit=10)
    assert [r.event.at for r in left] == [NOW]
    assert [row[0] for row in daily(db)] == [day_of(NOW)]


# -- schedules -------------------------------------------------------------------------


@pytest.fixture
def schedules(db: Database) -> ScheduleStore:
    store: ScheduleStore = SqlScheduleStore(db)
    return store


async def test_lease_once_then_due_again(schedules: ScheduleStore) -> None:
    assert await schedules.try_acquire("job", "p1", NOW, 60)
    assert not await schedules.try_acquire("job", "p2", NOW + 1, 60)
    # only the holder releases it
    assert not await schedules.finish("job", "p2", NOW + 3600)
    assert await schedules.finish("job", "p1", NOW + 3600)
    assert not await schedules.try_acquire("job", "p2", NOW + 10, 60)  # not due yet
    assert await schedules.try_acquire("job", "p2", NOW + 3600, 60)
    assert await schedules.try_acquire("other", "p1", NOW, 60)  # jobs are separate


async def test_an_expired_lease_is_taken_over(schedules: ScheduleStore) -> None:
    assert await schedules.try_acquire("job", "dead", NOW, 60)
    assert not await schedules.try_acquire("job", "p2", NOW + 59, 60)
    assert await schedules.try_acquire("job", "p2", NOW + 61, 60)
    # the old holder's late finish changes nothing
    assert not await schedules.finish("job", "dead", NOW + 9999)
    assert await schedules.finish("job", "p2", NOW + 100)


async def test_two_processes_contend_one_wins(database_url: str, db: Database) -> None:
    # Two Database objects: two engines, two writer threads, like two processes.
    second = Database(database_url)
    try:
        stores = [SqlScheduleStore(db), SqlScheduleStore(second)]
        for round_ in range(5):
            now = NOW + round_ * 1000
            won = await _contend(stores, now)
            assert len(won) == 1, won
            assert await stores[0].finish("race", won[0], now + 500)
    finally:
        await second.close()


async def _contend(stores: list[SqlScheduleStore], now: float) -> list[str]:
    """Four contenders over the stores at once; the names of those that won."""
    results: dict[str, bool] = {}

    async def contend(name: str, store: SqlScheduleStore) -> None:
        results[name] = await store.try_acquire("race", name, now, 60)

    async with anyio.create_task_group() as group:
        for i, store in enumerate(stores * 2):
            group.start_soon(contend, f"p{i}", store)
    return [name for name, ok in results.items() if ok]


async def test_scheduler_runs_a_job_once_per_period_across_processes(
    database_url: str, db: Database
) -> None:
    clock = ManualClock(NOW)
    second = Database(database_url)
    runs: list[str] = []
    try:
        schedulers = [
            Scheduler(SqlScheduleStore(d), holder=f"p{i}", clock=clock)
            for i, d in enumerate((db, second))
        ]

        async def tick() -> list[bool]:
            return [
                await s.run_if_due(
                    "job",
                    functools.partial(_append, runs, s.holder),
                    every=3600,
                    lease_seconds=60,
                )
                for s in schedulers
            ]

        assert await tick() == [True, False]
        clock.advance(1800)
        assert await tick() == [False, False]
        clock.advance(1801)
        assert await tick() == [True, False]
        assert runs == ["p0", "p0"]
    finally:
        await second.close()


async def _append(runs: list[str], holder: str) -> None:
    runs.append(holder)


async def test_retention_deletes_what_is_past_it(
    db: Database, pulls: PullStore
) -> None:
    clock = ManualClock(NOW)
    service = PullService(
        pulls,
        SqlAccountStore(db),
        SqlScheduleStore(db),
        PullSettings(retention_days=90, aggregate_retention_days=365),
        clock=clock,
    )
    await pulls.record(
        [
            pull(at=NOW - 400 * DAY),  # event and day past both retentions
            pull(at=NOW - 100 * DAY),  # event past retention, its day kept
            pull(at=NOW - DAY),
        ]
    )
    assert await service.retention()
    left = await pulls.query(PullFilter(), limit=10)
    assert [r.event.at for r in left] == [NOW - DAY]
    assert [row[0] for row in daily(db)] == [day_of(NOW - 100 * DAY), day_of(NOW - DAY)]
    assert not await service.retention()  # once an hour, across processes
    await service.recorder.close()
