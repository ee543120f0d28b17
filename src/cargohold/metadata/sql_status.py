"""``SqlStatusStore``: the status page's tables (SQLite, PostgreSQL).

A check round is one transaction: its raw rows plus an upsert of each component's
counts for the day, so the 90-day bars read one row per component and day.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cargohold.metadata.outbox import EMAIL, PENDING, SIGN, WEBHOOK
from cargohold.metadata.schema import (
    outbox,
    status_checks,
    status_daily,
    status_incident_updates,
    status_incidents,
)
from cargohold.metadata.status import (
    DAY,
    DEGRADED,
    MAINTENANCE,
    MAJOR,
    OPERATIONAL,
    PARTIAL,
    CheckResult,
    DailyCounts,
    Incident,
    IncidentUpdate,
    QueueSignals,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

    from cargohold.metadata.database import Database

_C = status_checks.c
_D = status_daily.c
_I = status_incidents.c
_U = status_incident_updates.c
_O = outbox.c
_CLOSED = ("resolved", "completed")
_COUNTED = {OPERATIONAL: "operational", DEGRADED: "degraded", PARTIAL: "partial"}
_COUNTED[MAJOR] = "major"


def _upsert(db: Database, values: dict[str, Any]) -> sa.Executable:
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # noqa: PLC0415
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # noqa: PLC0415
    statement = insert(status_daily).values(**values)
    counters = ("checks", "operational", "degraded", "partial", "major", "maintenance")
    return statement.on_conflict_do_update(
        index_elements=["component", "day"],
        set_={
            name: status_daily.c[name] + statement.excluded[name] for name in counters
        },
    )


def _check(row: sa.Row[Any]) -> CheckResult:
    return CheckResult(
        component=row.component,
        checked_at=row.checked_at,
        status=row.status,
        latency_ms=row.latency_ms,
        detail=row.detail,
        checked_by=row.checked_by,
    )


def _incident(row: sa.Row[Any], updates: Sequence[IncidentUpdate]) -> Incident:
    return Incident(
        id=row.id,
        kind=row.kind,
        name=row.name,
        status=row.status,
        impact=row.impact,
        components=tuple(json.loads(row.components)),
        created_at=row.created_at,
        updated_at=row.updated_at,
        monitoring_at=row.monitoring_at,
        resolved_at=row.resolved_at,
        scheduled_for=row.scheduled_for,
        scheduled_until=row.scheduled_until,
        updates=tuple(updates),
    )


def _incident_values(incident: Incident) -> dict[str, Any]:
    return {
        "kind": incident.kind,
        "name": incident.name,
        "status": incident.status,
        "impact": incident.impact,
        "components": json.dumps(list(incident.components)),
        "created_at": incident.created_at,
        "updated_at": incident.updated_at,
        "monitoring_at": incident.monitoring_at,
        "resolved_at": incident.resolved_at,
        "scheduled_for": incident.scheduled_for,
        "scheduled_until": incident.scheduled_until,
    }


def _update_values(update: IncidentUpdate) -> dict[str, Any]:
    return {
        "id": update.id,
        "incident_id": update.incident_id,
        "status": update.status,
        "body": update.body,
        "created_at": update.created_at,
    }


def _with_updates(conn: Connection, rows: Sequence[sa.Row[Any]]) -> list[Incident]:
    if not rows:
        return []
    found: dict[str, list[IncidentUpdate]] = defaultdict(list)
    query = (
        sa.select(status_incident_updates)
        .where(_U.incident_id.in_([row.id for row in rows]))
        .order_by(_U.created_at, _U.id)
    )
    for u in conn.execute(query):
        found[u.incident_id].append(
            IncidentUpdate(u.id, u.incident_id, u.status, u.body, u.created_at)
        )
    return [_incident(row, found[row.id]) for row in rows]


class SqlStatusStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_checks(
        self, results: Sequence[CheckResult], *, maintenance: frozenset[str]
    ) -> None:
        if not results:
            return
        rows = [
            {
                "component": r.component,
                "checked_at": r.checked_at,
                "status": r.status,
                "latency_ms": r.latency_ms,
                "detail": r.detail[:255],
                "checked_by": r.checked_by[:64],
            }
            for r in results
        ]
        upserts = []
        for r in results:
            counts = dict.fromkeys(
                ("operational", "degraded", "partial", "major", "maintenance"), 0
            )
            counts[_COUNTED[r.status]] = 1
            if r.component in maintenance:
                counts["maintenance"] = 1
            values = {"component": r.component, "day": int(r.checked_at // DAY)}
            upserts.append(_upsert(self._db, values | {"checks": 1} | counts))

        def write(conn: Connection) -> None:
            conn.execute(sa.insert(status_checks), rows)
            for statement in upserts:
                conn.execute(statement)

        await self._db.write(write)

    async def latest_checks(self) -> dict[str, CheckResult]:
        newest = (
            sa.select(_C.component, sa.func.max(_C.checked_at).label("at"))
            .group_by(_C.component)
            .subquery()
        )
        query = sa.select(status_checks).join(
            newest,
            sa.and_(_C.component == newest.c.component, _C.checked_at == newest.c.at),
        )

        def read(conn: Connection) -> dict[str, CheckResult]:
            return {row.component: _check(row) for row in conn.execute(query)}

        return await self._db.read(read)

    async def recent_checks(self, since: float) -> list[CheckResult]:
        query = (
            sa.select(status_checks)
            .where(_C.checked_at >= since)
            .order_by(_C.checked_at, _C.id)
        )
        return await self._db.read(
            lambda conn: [_check(row) for row in conn.execute(query)]
        )

    async def daily(self, since_day: int) -> list[DailyCounts]:
        query = (
            sa.select(status_daily)
            .where(_D.day >= since_day)
            .order_by(_D.component, _D.day)
        )

        def read(conn: Connection) -> list[DailyCounts]:
            return [
                DailyCounts(
                    row.component,
                    row.day,
                    row.checks,
                    row.operational,
                    row.degraded,
                    row.partial,
                    row.major,
                    row.maintenance,
                )
                for row in conn.execute(query)
            ]

        return await self._db.read(read)

    async def prune(self, *, checks_before: float, days_before: int) -> int:
        checks = sa.delete(status_checks).where(_C.checked_at < checks_before)
        days = sa.delete(status_daily).where(_D.day < days_before)

        def write(conn: Connection) -> int:
            deleted = conn.execute(checks.execution_options(preserve_rowcount=True))
            old = conn.execute(days.execution_options(preserve_rowcount=True))
            return int(deleted.rowcount) + int(old.rowcount)

        return await self._db.write(write)

    async def create_incident(self, incident: Incident) -> None:
        values = {"id": incident.id} | _incident_values(incident)
        updates = [_update_values(u) for u in incident.updates]

        def write(conn: Connection) -> None:
            conn.execute(sa.insert(status_incidents).values(**values))
            if updates:
                conn.execute(sa.insert(status_incident_updates), updates)

        await self._db.write(write)

    async def update_incident(self, incident: Incident, update: IncidentUpdate) -> None:
        change = (
            sa.update(status_incidents)
            .where(_I.id == incident.id)
            .values(**_incident_values(incident))
            .execution_options(preserve_rowcount=True)
        )
        values = _update_values(update)

        def write(conn: Connection) -> None:
            if conn.execute(change).rowcount != 1:
                raise KeyError(incident.id)
            conn.execute(sa.insert(status_incident_updates).values(**values))

        await self._db.write(write)

    async def incident(self, incident_id: str) -> Incident | None:
        query = sa.select(status_incidents).where(_I.id == incident_id)

        def read(conn: Connection) -> Incident | None:
            found = _with_updates(conn, list(conn.execute(query)))
            return found[0] if found else None

        return await self._db.read(read)

    async def incidents(
        self, kind: str, *, limit: int, unresolved: bool = False
    ) -> list[Incident]:
        query = sa.select(status_incidents).where(_I.kind == kind)
        if unresolved:
            query = query.where(_I.status.not_in(_CLOSED))
        if kind == MAINTENANCE:
            query = query.order_by(_I.scheduled_for.desc(), _I.id)
        else:
            query = query.order_by(_I.created_at.desc(), _I.id)
        query = query.limit(limit)
        return await self._db.read(
            lambda conn: _with_updates(conn, list(conn.execute(query)))
        )

    async def queue_signals(self, *, since: float) -> QueueSignals:
        signs = sa.select(sa.func.count(), sa.func.min(_O.created_at)).where(
            _O.channel == SIGN, _O.state == PENDING
        )
        deliveries = (_O.channel.in_((EMAIL, WEBHOOK)),)
        failing = sa.select(sa.func.count()).where(
            *deliveries, _O.state == PENDING, _O.attempts > 0
        )
        dead = sa.select(sa.func.count()).where(
            *deliveries, _O.state == "dead", _O.updated_at >= since
        )
        email = sa.select(sa.func.count()).where(
            _O.channel == EMAIL, _O.state == PENDING
        )

        def read(conn: Connection) -> QueueSignals:
            pending, oldest = conn.execute(signs).one()
            return QueueSignals(
                sign_pending=int(pending),
                oldest_sign_pending_at=oldest,
                deliveries_failing=int(conn.execute(failing).scalar_one()),
                deliveries_dead=int(conn.execute(dead).scalar_one()),
                email_pending=int(conn.execute(email).scalar_one()),
            )

        return await self._db.read(read)
