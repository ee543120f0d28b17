"""The ``StatusStore`` contract (``cargohold.metadata.status``), and the check rounds'
lease over a real database: one writer at a time, handed on when a holder dies."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from cargohold.metadata.outbox import DEAD, EMAIL, PENDING, SIGN, WEBHOOK
from cargohold.metadata.schema import outbox
from cargohold.metadata.sql_schedules import SqlScheduleStore
from cargohold.metadata.sql_status import SqlStatusStore
from cargohold.metadata.status import (
    DAY,
    DEGRADED,
    INCIDENT,
    MAINTENANCE,
    MAJOR,
    OPERATIONAL,
    CheckResult,
    Incident,
    IncidentUpdate,
)
from cargohold.registry.schedules import Scheduler
from cargohold.registry.status import Check, Component, Outcome, StatusService
from tests.clock import ManualClock

if TYPE_CHECKING:
    from cargohold.metadata.database import Database
    from cargohold.metadata.status import StatusStore

T0 = 1_780_000_000.0  # a moment well inside a UTC day
TODAY = int(T0 // DAY)


def result(component: str, at: float, status: str = OPERATIONAL) -> CheckResult:
    return CheckResult(component, at, status, 12.5, "ok", "host:1:abc")


def item(
    incident_id: str, *, kind: str = INCIDENT, status: str = "investigating", at: float
) -> Incident:
    return Incident(
        id=incident_id,
        kind=kind,
        name=f"name {incident_id}",
        status=status,
        impact="maintenance" if kind == MAINTENANCE else "minor",
        components=("registry-api", "blob-storage"),
        created_at=at,
        updated_at=at,
        scheduled_for=at + 100 if kind == MAINTENANCE else None,
        scheduled_until=at + 200 if kind == MAINTENANCE else None,
        updates=(IncidentUpdate(f"u-{incident_id}", incident_id, status, "first", at),),
    )


async def test_rounds_are_counted_per_component_and_day(db: Database) -> None:
    store: StatusStore = SqlStatusStore(db)
    await store.record_checks(
        [result("registry-api", T0), result("blob-storage", T0, MAJOR)],
        maintenance=frozenset(),
    )
    await store.record_checks(
        [result("registry-api", T0 + 60, DEGRADED), result("blob-storage", T0 + 60)],
        maintenance=frozenset({"blob-storage"}),
    )
    await store.record_checks(
        [result("registry-api", T0 + DAY)], maintenance=frozenset()
    )
    daily = {(d.component, d.day): d for d in await store.daily(TODAY)}
    api = daily["registry-api", TODAY]
    assert (api.checks, api.operational, api.degraded, api.major) == (2, 1, 1, 0)
    blob = daily["blob-storage", TODAY]
    assert (blob.checks, blob.operational, blob.major, blob.maintenance) == (2, 1, 1, 1)
    assert daily["registry-api", TODAY + 1].checks == 1
    assert {d.day for d in await store.daily(TODAY + 1)} == {TODAY + 1}

    latest = await store.latest_checks()
    assert latest["registry-api"] == result("registry-api", T0 + DAY)
    assert latest["blob-storage"].checked_at == T0 + 60
    assert [r.checked_at for r in await store.recent_checks(T0 + 1)] == [
        T0 + 60,
        T0 + 60,
        T0 + DAY,
    ]
    # An empty round writes nothing.
    await store.record_checks([], maintenance=frozenset())
    assert len(await store.recent_checks(0)) == 5


async def test_prune_drops_old_checks_and_days(db: Database) -> None:
    store: StatusStore = SqlStatusStore(db)
    for days_ago in (100, 10, 0):
        at = T0 - days_ago * DAY
        await store.record_checks([result("registry-api", at)], maintenance=frozenset())
    deleted = await store.prune(checks_before=T0 - 7 * DAY, days_before=TODAY - 90)
    assert deleted == 3  # two raw checks, one day's counts
    assert [r.checked_at for r in await store.recent_checks(0)] == [T0]
    assert [d.day for d in await store.daily(0)] == [TODAY - 10, TODAY]


async def test_incidents_with_their_updates(db: Database) -> None:
    store: StatusStore = SqlStatusStore(db)
    await store.create_incident(item("a1", at=T0))
    await store.create_incident(item("a2", at=T0 + 10))
    await store.create_incident(item("m1", kind=MAINTENANCE, status="scheduled", at=T0))
    first = await store.incident("a1")
    assert first == item("a1", at=T0)
    assert await store.incident("nope") is None

    update = IncidentUpdate("u2", "a1", "resolved", "fixed", T0 + 20)
    assert first is not None
    resolved = replace(
        first,
        status="resolved",
        updated_at=T0 + 20,
        resolved_at=T0 + 20,
        updates=(*first.updates, update),
    )
    await store.update_incident(resolved, update)
    assert await store.incident("a1") == resolved

    newest_first = await store.incidents(INCIDENT, limit=10)
    assert [i.id for i in newest_first] == ["a2", "a1"]
    assert [i.id for i in await store.incidents(INCIDENT, limit=1)] == ["a2"]
    assert [
        i.id for i in await store.incidents(INCIDENT, limit=10, unresolved=True)
    ] == ["a2"]
    windows = await store.incidents(MAINTENANCE, limit=10, unresolved=True)
    assert [(m.id, m.scheduled_for) for m in windows] == [("m1", T0 + 100)]

    ghost = item("ghost", at=T0)
    with pytest.raises(KeyError):
        await store.update_incident(ghost, ghost.updates[0])


def _message(
    key: str, channel: str, state: str, *, attempts: int, at: float
) -> dict[str, object]:
    return {
        "key": key,
        "channel": channel,
        "payload": "{}",
        "state": state,
        "attempts": attempts,
        "next_attempt_at": at,
        "lease_until": 0.0,
        "holder": "",
        "created_at": at,
        "updated_at": at,
    }


async def test_queue_signals_read_the_outbox(db: Database) -> None:
    store: StatusStore = SqlStatusStore(db)
    empty = await store.queue_signals(since=0)
    assert (empty.sign_pending, empty.oldest_sign_pending_at) == (0, None)
    rows = [
        _message("s1", SIGN, PENDING, attempts=0, at=T0 - 50),
        _message("s2", SIGN, PENDING, attempts=2, at=T0 - 900),
        _message("s3", SIGN, "done", attempts=1, at=T0 - 5000),
        _message("e1", EMAIL, PENDING, attempts=0, at=T0),
        _message("e2", EMAIL, PENDING, attempts=3, at=T0),
        _message("w1", WEBHOOK, DEAD, attempts=9, at=T0 - 10),
        _message("w2", WEBHOOK, DEAD, attempts=9, at=T0 - 10_000),
    ]
    await db.write(lambda conn: conn.execute(sa.insert(outbox), rows))
    signals = await store.queue_signals(since=T0 - 3600)
    assert (signals.sign_pending, signals.oldest_sign_pending_at) == (2, T0 - 900)
    assert (signals.deliveries_failing, signals.deliveries_dead) == (1, 1)
    assert signals.email_pending == 2


def _service(
    db: Database, clock: ManualClock, holder: str, ran: list[str]
) -> StatusService:
    async def probe() -> Outcome:
        ran.append(holder)
        return Outcome(OPERATIONAL, holder)

    return StatusService(
        SqlStatusStore(db),
        Scheduler(SqlScheduleStore(db), holder=holder, clock=clock),
        [Check(Component("registry-api", "Registry API", "", 1), probe)],
        name="test",
        url="http://registry.test/status",
        interval=60.0,
        clock=clock,
    )


async def test_one_writer_per_round_and_the_lease_passes_on(db: Database) -> None:
    clock = ManualClock(T0)
    ran: list[str] = []
    first, second = _service(db, clock, "a", ran), _service(db, clock, "b", ran)
    assert await first.tick()
    assert not await second.tick()  # not due again for 60 s
    clock.advance(61)
    assert await second.tick()
    assert not await first.tick()
    assert ran == ["a", "b"]
    checks = await SqlStatusStore(db).recent_checks(0)
    assert [(c.checked_by, c.checked_at) for c in checks] == [("a", T0), ("b", T0 + 61)]

    # "a" takes the lease and dies before finishing (kill -9): nobody else runs a
    # round while the lease holds, and someone does once it ran out.
    clock.advance(61)
    store = SqlScheduleStore(db)
    assert await store.try_acquire("status.checks", "a", clock(), 30.0)
    assert not await second.tick()
    clock.advance(31)
    assert await second.tick()
    assert ran == ["a", "b", "b"]
