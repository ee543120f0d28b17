"""``SqlPullStore``: the ``PullStore`` on SQLAlchemy Core (SQLite, PostgreSQL)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.pulls import (
    Puller,
    PullEvent,
    PullFilter,
    PullRecord,
    day_of,
)

_E = t.pull_events.c
_D = t.pull_daily.c
_EVENT_COLUMNS = (
    "at", "identity", "kind", "organization", "repository", "reference", "digest",
    "method", "client", "user_agent", "tool", "tool_version", "platform",
)  # fmt: skip
# Rows per INSERT on SQLite: 13 parameters each, well under its 32,766 a statement.
_SQLITE_ROWS = 1000
_TOKEN_PREFIX = "token:"  # noqa: S105 - a subject prefix, not a secret


def _upsert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        insert: Any = postgresql.insert(t.pull_daily)
    else:
        from sqlalchemy.dialects import sqlite  # noqa: PLC0415

        insert = sqlite.insert(t.pull_daily)
    excluded = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=["day", "identity", "repository", "digest"],
        set_={
            "count": t.pull_daily.c.count + excluded.count,
            "last_at": sa.case(
                (excluded.last_at > t.pull_daily.c.last_at, excluded.last_at),
                else_=t.pull_daily.c.last_at,
            ),
            "organization": excluded.organization,
        },
    )


def _organizations(conn: Connection, events: list[PullEvent]) -> list[str | None]:
    """Each event's organization, with two queries for the whole batch."""
    token_ids = {
        e.identity[len(_TOKEN_PREFIX) :]
        for e in events
        if e.identity.startswith(_TOKEN_PREFIX)
    }
    token_orgs: dict[str, str] = {}
    if token_ids:
        rows = conn.execute(
            sa.select(t.pull_tokens.c.id, t.pull_tokens.c.organization).where(
                t.pull_tokens.c.id.in_(sorted(token_ids))
            )
        )
        token_orgs = {row.id: row.organization for row in rows}
    namespaces = {e.repository.split("/", 1)[0] for e in events}
    existing = set(
        conn.execute(
            sa.select(t.organizations.c.name).where(
                t.organizations.c.name.in_(sorted(namespaces))
            )
        ).scalars()
    )
    found: list[str | None] = []
    for event in events:
        if event.identity.startswith(_TOKEN_PREFIX):
            org = token_orgs.get(event.identity[len(_TOKEN_PREFIX) :])
            if org is not None:
                found.append(org)
                continue
        namespace = event.repository.split("/", 1)[0]
        found.append(namespace if namespace in existing else None)
    return found


def _event_values(event: PullEvent, organization: str | None) -> tuple[Any, ...]:
    """The row of ``pull_events``, in ``_EVENT_COLUMNS`` order, cut to the widths."""
    return (
        event.at,
        event.identity[:200],
        event.kind,
        organization,
        event.repository,
        event.reference[:200],
        event.digest,
        event.method,
        event.client[:64],
        event.user_agent[:512],
        event.tool[:64],
        event.tool_version[:64],
        event.platform[:64],
    )


def _daily_rows(
    events: list[PullEvent], organizations: list[str | None]
) -> list[dict[str, Any]]:
    totals: dict[tuple[int, str, str, str], list[Any]] = defaultdict(
        lambda: [0, 0.0, "", None]
    )
    for event, org in zip(events, organizations, strict=True):
        key = (day_of(event.at), event.identity[:200], event.repository, event.digest)
        total = totals[key]
        total[0] += 1
        total[1] = max(total[1], event.at)
        total[2], total[3] = event.kind, org
    return [
        {
            "day": day,
            "identity": identity,
            "repository": repository,
            "digest": digest,
            "kind": kind,
            "organization": org,
            "count": count,
            "last_at": last_at,
        }
        for (day, identity, repository, digest), (count, last_at, kind, org) in sorted(
            totals.items()
        )
    ]


def _record(row: Any) -> PullRecord:
    return PullRecord(
        id=row.id,
        organization=row.organization,
        event=PullEvent(
            at=row.at,
            identity=row.identity,
            kind=row.kind,
            repository=row.repository,
            reference=row.reference,
            digest=row.digest,
            method=row.method,
            client=row.client,
            user_agent=row.user_agent,
            tool=row.tool,
            tool_version=row.tool_version,
            platform=row.platform,
        ),
    )


def _conditions(where: PullFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if where.repository is not None:
        conditions.append(_E.repository == where.repository)
    if where.digest is not None:
        conditions.append(_E.digest == where.digest)
    if where.reference is not None:
        conditions.append(_E.reference == where.reference)
    if where.identity is not None:
        conditions.append(_E.identity == where.identity)
    if where.since is not None:
        conditions.append(_E.at >= where.since)
    if where.until is not None:
        conditions.append(_E.at < where.until)
    if where.namespaces is not None:
        conditions.append(
            sa.or_(
                sa.false(),
                *(
                    _E.repository.startswith(f"{ns}/", autoescape=True)
                    for ns in where.namespaces
                ),
            )
        )
    return conditions


class SqlPullStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._upsert = _upsert(db.dialect)
        # A flush writes thousands of rows: never through SQLAlchemy's per-row
        # processing. PostgreSQL: the driver's executemany. SQLite: multi-row VALUES,
        # ``_SQLITE_ROWS`` rows a statement (executemany steps once per row, and
        # Python's sqlite3 releases and retakes the GIL around every step: thousands
        # of hand-offs with the busy event loop per flush, costing more CPU than the
        # inserts themselves).
        columns = ", ".join(_EVENT_COLUMNS)
        mark = "?" if db.is_sqlite else "%s"
        self._row_marks = f"({', '.join([mark] * len(_EVENT_COLUMNS))})"
        self._insert_head = f"INSERT INTO pull_events ({columns}) VALUES "  # noqa: S608 - constants
        self._insert_sql = self._insert_head + self._row_marks

    def _insert_rows(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not self._db.is_sqlite:
            conn.exec_driver_sql(self._insert_sql, rows)
            return
        for start in range(0, len(rows), _SQLITE_ROWS):
            chunk = rows[start : start + _SQLITE_ROWS]
            # Two texts in all (a full chunk, the rest): sqlite3's statement cache
            # keeps them prepared.
            sql = self._insert_head + ",".join([self._row_marks] * len(chunk))
            conn.exec_driver_sql(sql, tuple(itertools.chain.from_iterable(chunk)))

    async def record(self, events: list[PullEvent]) -> list[PullRecord]:
        if not events:
            return []

        def write(conn: Connection) -> list[PullRecord]:
            organizations = _organizations(conn, events)
            rows = [
                _event_values(e, o) for e, o in zip(events, organizations, strict=True)
            ]
            self._insert_rows(conn, rows)
            conn.execute(self._upsert, _daily_rows(events, organizations))
            # Ids are not needed by anyone who listens; 0 says "not read back".
            return [
                PullRecord(0, e, o) for e, o in zip(events, organizations, strict=True)
            ]

        return await self._db.write(write)

    async def query(
        self, where: PullFilter, *, limit: int, before: tuple[float, int] | None = None
    ) -> list[PullRecord]:
        conditions = _conditions(where)
        if before is not None:
            at, row_id = before
            conditions.append(sa.or_(_E.at < at, sa.and_(_E.at == at, _E.id < row_id)))
        statement = (
            sa.select(t.pull_events)
            .where(*conditions)
            .order_by(_E.at.desc(), _E.id.desc())
            .limit(limit)
        )

        def read(conn: Connection) -> list[PullRecord]:
            return [_record(row) for row in conn.execute(statement)]

        return await self._db.read(read)

    async def pullers(self, digest: str, *, since: float) -> list[Puller]:
        statement = (
            sa.select(
                _E.identity,
                sa.func.count().label("pulls"),
                sa.func.max(_E.at).label("last_at"),
            )
            .where(_E.digest == digest, _E.at >= since)
            .group_by(_E.identity)
            .order_by(sa.desc("last_at"), _E.identity)
        )

        def read(conn: Connection) -> list[Puller]:
            return [
                Puller(row.identity, int(row.pulls), float(row.last_at))
                for row in conn.execute(statement)
            ]

        return await self._db.read(read)

    async def prune(
        self, *, events_before: float, daily_before: int, batch: int
    ) -> tuple[int, int]:
        old_events = sa.select(_E.id).where(_E.at < events_before).limit(batch)
        rowcount = {"preserve_rowcount": True}
        daily_key = (_D.day, _D.identity, _D.repository, _D.digest)
        old_daily = (
            sa.select(*daily_key).where(_D.day < daily_before).limit(batch).subquery()
        )

        def delete(conn: Connection) -> tuple[int, int]:
            events = conn.execute(
                sa.delete(t.pull_events).where(_E.id.in_(old_events)),
                execution_options=rowcount,
            ).rowcount
            daily = conn.execute(
                sa.delete(t.pull_daily).where(
                    sa.tuple_(*daily_key).in_(sa.select(*old_daily.c))
                ),
                execution_options=rowcount,
            ).rowcount
            return int(events or 0), int(daily or 0)

        return await self._db.write(delete)
