"""``SqlOutboxStore`` and ``SqlNoticeStore`` on SQLAlchemy Core, SQLite and PostgreSQL.

Leasing is one ``WITH due AS (SELECT … LIMIT n) UPDATE … RETURNING``: on PostgreSQL
the select takes ``FOR UPDATE SKIP LOCKED``, so concurrent workers split the due
rows between them instead of waiting on each other; on SQLite every write transaction
is ``BEGIN IMMEDIATE`` (one writer at a time), so the statement runs alone. The outer
``WHERE`` repeats the due conditions, so a row leased meanwhile is never taken twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.delivery import Leased, NoticeRecord, OutboxRecord, Outcome
from cargohold.metadata.outbox import DEAD, DONE, PENDING, OutboxMessage, enqueue_in

_O = t.outbox
_N = t.notices
# The longest error text kept (the column is TEXT; this keeps rows small).
_MAX_ERROR = 2000


class SqlOutboxStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def lease(
        self,
        holder: str,
        channels: Sequence[str],
        *,
        now: float,
        lease_seconds: float,
        limit: int,
    ) -> list[Leased]:
        if not channels or limit <= 0:
            return []
        due = (
            _O.c.state == PENDING,
            _O.c.channel.in_(list(channels)),
            _O.c.next_attempt_at <= now,
            _O.c.lease_until <= now,
        )
        candidates = (
            sa.select(_O.c.id)
            .where(*due)
            .order_by(_O.c.next_attempt_at, _O.c.id)
            .limit(limit)
        )
        if not self._db.is_sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        # A CTE, evaluated once: as an ``IN (subquery)``, PostgreSQL may run the
        # LIMIT subquery again per row and lease more than ``limit`` rows.
        due_ids = candidates.cte("due")
        if not self._db.is_sqlite:
            due_ids = due_ids.prefix_with("MATERIALIZED")
        lease_until = now + lease_seconds
        query = (
            sa.update(_O)
            .where(_O.c.id.in_(sa.select(due_ids.c.id)), *due)
            .values(holder=holder, lease_until=lease_until, updated_at=now)
            .returning(_O.c.id, _O.c.key, _O.c.channel, _O.c.payload, _O.c.attempts)
        )
        rows = await self._db.write(lambda conn: conn.execute(query).all())
        leased = [
            Leased(
                row.id,
                row.key,
                row.channel,
                json.loads(row.payload),
                row.attempts,
                lease_until,
            )
            for row in rows
        ]
        leased.sort(key=lambda item: item.id)
        return leased

    async def settle(
        self, holder: str, outcomes: Sequence[Outcome], *, now: float
    ) -> int:
        if not outcomes:
            return 0

        done = [o for o in outcomes if o.error is None]
        retried = [
            o for o in outcomes if o.error is not None and o.retry_at is not None
        ]
        dead = [o for o in outcomes if o.error is not None and o.retry_at is None]
        held = (
            _O.c.id == sa.bindparam("b_id"),
            _O.c.state == PENDING,
            _O.c.holder == holder,
            _O.c.lease_until == sa.bindparam("b_lease"),
        )
        released = {
            "attempts": _O.c.attempts + 1,
            "holder": "",
            "lease_until": 0.0,
            "updated_at": now,
        }
        # One statement per kind of outcome, executed for many rows at once.
        batches: list[tuple[sa.Update, list[dict[str, Any]]]] = [
            (
                sa.update(_O).where(*held).values(released | {"state": DONE}),
                [{"b_id": o.id, "b_lease": o.lease_until} for o in done],
            ),
            (
                sa.update(_O)
                .where(*held)
                .values(
                    released
                    | {
                        "next_attempt_at": sa.bindparam("b_retry"),
                        "last_error": sa.bindparam("b_error"),
                    }
                ),
                [
                    {
                        "b_id": o.id,
                        "b_lease": o.lease_until,
                        "b_retry": o.retry_at,
                        "b_error": (o.error or "")[:_MAX_ERROR],
                    }
                    for o in retried
                ],
            ),
            (
                sa.update(_O)
                .where(*held)
                .values(
                    released | {"state": DEAD, "last_error": sa.bindparam("b_error")}
                ),
                [
                    {
                        "b_id": o.id,
                        "b_lease": o.lease_until,
                        "b_error": (o.error or "")[:_MAX_ERROR],
                    }
                    for o in dead
                ],
            ),
        ]

        def run(conn: Connection) -> int:
            applied = 0
            for query, params in batches:
                if len(params) == 1:
                    applied += conn.execute(query, params[0]).rowcount
                elif params:
                    applied += conn.execute(query, params).rowcount
            return applied

        return await self._db.write(run)

    async def release(self, holder: str, *, now: float) -> int:
        query = (
            sa.update(_O)
            .where(_O.c.holder == holder, _O.c.state == PENDING)
            .values(holder="", lease_until=0.0, updated_at=now)
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount)

    async def messages(
        self, *, state: str | None, after_id: int, limit: int
    ) -> list[OutboxRecord]:
        query = (
            sa.select(
                _O.c.id,
                _O.c.key,
                _O.c.channel,
                _O.c.state,
                _O.c.attempts,
                _O.c.next_attempt_at,
                _O.c.last_error,
                _O.c.created_at,
                _O.c.updated_at,
            )
            .where(_O.c.id > after_id)
            .order_by(_O.c.id)
            .limit(limit)
        )
        if state is not None:
            query = query.where(_O.c.state == state)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [OutboxRecord(*row) for row in rows]

    async def enqueue(self, messages: Sequence[OutboxMessage], *, now: float) -> None:
        def run(conn: Connection) -> None:
            enqueue_in(conn, messages, now=now)

        await self._db.write(run)

    async def retry(self, message_id: int, *, now: float) -> bool:
        # Attempts start again: whoever retries a dead message has fixed its cause,
        # and a first temporary failure after that must not bury it at once.
        query = (
            sa.update(_O)
            .where(_O.c.id == message_id, _O.c.state == DEAD)
            .values(
                state=PENDING,
                attempts=0,
                next_attempt_at=now,
                lease_until=0.0,
                holder="",
                updated_at=now,
            )
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount == 1)

    async def prune(self, *, done_before: float) -> int:
        query = sa.delete(_O).where(_O.c.state == DONE, _O.c.updated_at < done_before)
        return await self._db.write(lambda conn: conn.execute(query).rowcount)


def _notice(row: Any) -> NoticeRecord:
    return NoticeRecord(
        row.id,
        row.identity,
        row.advisory,
        row.revision,
        json.loads(row.document),
        row.created_at,
        row.read_at,
    )


class SqlNoticeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def for_identity(
        self, identity: str, *, unread: bool, limit: int
    ) -> list[NoticeRecord]:
        query = (
            sa.select(_N)
            .where(_N.c.identity == identity)
            .order_by(_N.c.created_at.desc(), _N.c.id.desc())
            .limit(limit)
        )
        if unread:
            query = query.where(_N.c.read_at.is_(None))
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_notice(row) for row in rows]

    async def mark_read(self, identity: str, notice_id: int, *, now: float) -> bool:
        query = (
            sa.update(_N)
            .where(_N.c.id == notice_id, _N.c.identity == identity)
            .values(read_at=sa.func.coalesce(_N.c.read_at, now))
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount == 1)

    async def mark_all_read(self, identity: str, *, now: float) -> int:
        query = (
            sa.update(_N)
            .where(_N.c.identity == identity, _N.c.read_at.is_(None))
            .values(read_at=now)
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount)
