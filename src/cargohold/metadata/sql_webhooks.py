"""``SqlWebhookIndex``: the ``WebhookIndex`` on SQLAlchemy Core (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.outbox import OutboxMessage, enqueue_in
from cargohold.metadata.webhooks import DeliveryRecord, WebhookRecord

_VERSION_ROW = 1


def _webhook(row: Any) -> WebhookRecord:
    return WebhookRecord(
        id=row.id,
        organization=row.organization,
        url=row.url,
        events=tuple(json.loads(row.events)),
        repositories=tuple(json.loads(row.repositories)),
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_until=row.previous_until,
        batch_pulls=bool(row.batch_pulls),
        disabled=bool(row.disabled),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _delivery(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        webhook=row.webhook,
        message_id=row.message_id,
        event=row.event,
        attempt=row.attempt,
        at=row.at,
        status_code=row.status_code,
        error=row.error,
        duration_ms=row.duration_ms,
    )


def bump_version(conn: Connection) -> None:
    """Move the change counter, in the caller's transaction."""
    changes = t.webhook_changes
    moved = conn.execute(
        sa.update(changes)
        .where(changes.c.id == _VERSION_ROW)
        .values(version=changes.c.version + 1)
    ).rowcount
    if moved:
        return
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        insert = postgresql.insert(changes).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects import sqlite  # noqa: PLC0415

        insert = sqlite.insert(changes).on_conflict_do_nothing()
    conn.execute(insert.values(id=_VERSION_ROW, version=1))


def delete_organization_webhooks(conn: Connection, organization: str) -> None:
    """Delete an organization's webhooks and their logs, in the caller's transaction
    (the organization is being deleted: a new one of its name must not inherit them)."""
    ids = sa.select(t.webhooks.c.id).where(t.webhooks.c.organization == organization)
    conn.execute(
        sa.delete(t.webhook_deliveries).where(t.webhook_deliveries.c.webhook.in_(ids))
    )
    deleted = conn.execute(
        sa.delete(t.webhooks).where(t.webhooks.c.organization == organization)
    ).rowcount
    if deleted:
        bump_version(conn)


class SqlWebhookIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _bump(conn: Connection) -> None:
        bump_version(conn)

    async def _change(self, statement: sa.Executable) -> bool:
        def run(conn: Connection) -> bool:
            changed = conn.execute(statement).rowcount > 0
            if changed:
                self._bump(conn)
            return changed

        return await self._db.write(run)

    async def create(self, record: WebhookRecord) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                sa.insert(t.webhooks).values(
                    id=record.id,
                    organization=record.organization,
                    url=record.url,
                    events=json.dumps(list(record.events)),
                    repositories=json.dumps(list(record.repositories)),
                    secret=record.secret,
                    previous_secret=record.previous_secret,
                    previous_until=record.previous_until,
                    batch_pulls=record.batch_pulls,
                    disabled=record.disabled,
                    created_by=record.created_by,
                    created_at=record.created_at,
                )
            )
            self._bump(conn)

        await self._db.write(run)

    async def get(self, webhook_id: str) -> WebhookRecord | None:
        query = sa.select(t.webhooks).where(t.webhooks.c.id == webhook_id)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return _webhook(row) if row is not None else None

    async def _all(self, query: sa.Select[Any]) -> list[WebhookRecord]:
        query = query.order_by(t.webhooks.c.created_at, t.webhooks.c.id)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_webhook(row) for row in rows]

    async def query(self, organization: str | None) -> list[WebhookRecord]:
        column = t.webhooks.c.organization
        where = column.is_(None) if organization is None else column == organization
        return await self._all(sa.select(t.webhooks).where(where))

    async def enabled(self) -> list[WebhookRecord]:
        return await self._all(
            sa.select(t.webhooks).where(t.webhooks.c.disabled == sa.false())
        )

    async def delete(self, webhook_id: str) -> bool:
        def run(conn: Connection) -> bool:
            conn.execute(
                sa.delete(t.webhook_deliveries).where(
                    t.webhook_deliveries.c.webhook == webhook_id
                )
            )
            gone = (
                conn.execute(
                    sa.delete(t.webhooks).where(t.webhooks.c.id == webhook_id)
                ).rowcount
                > 0
            )
            if gone:
                self._bump(conn)
            return gone

        return await self._db.write(run)

    async def set_disabled(self, webhook_id: str, *, disabled: bool) -> bool:
        return await self._change(
            sa.update(t.webhooks)
            .where(t.webhooks.c.id == webhook_id)
            .values(disabled=disabled)
        )

    async def rotate(
        self, webhook_id: str, secret: str, *, previous_until: float
    ) -> bool:
        return await self._change(
            sa.update(t.webhooks)
            .where(t.webhooks.c.id == webhook_id)
            .values(
                previous_secret=t.webhooks.c.secret,
                previous_until=previous_until,
                secret=secret,
            )
        )

    async def version(self) -> int:
        query = sa.select(t.webhook_changes.c.version).where(
            t.webhook_changes.c.id == _VERSION_ROW
        )
        found = await self._db.read(lambda conn: conn.execute(query).scalar())
        return int(found or 0)

    async def enqueue(self, messages: Sequence[OutboxMessage], *, now: float) -> None:
        if messages:
            await self._db.write(lambda conn: enqueue_in(conn, messages, now=now))

    async def record_delivery(self, delivery: DeliveryRecord) -> None:
        values = {
            "webhook": delivery.webhook,
            "message_id": delivery.message_id,
            "event": delivery.event,
            "attempt": delivery.attempt,
            "at": delivery.at,
            "status_code": delivery.status_code,
            "error": delivery.error,
            "duration_ms": delivery.duration_ms,
        }
        await self._db.write(
            lambda conn: conn.execute(sa.insert(t.webhook_deliveries).values(values))
        )

    async def deliveries(
        self, webhook_id: str, *, before_id: int | None, limit: int
    ) -> list[DeliveryRecord]:
        table = t.webhook_deliveries
        query = sa.select(table).where(table.c.webhook == webhook_id)
        if before_id is not None:
            query = query.where(table.c.id < before_id)
        query = query.order_by(table.c.id.desc()).limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_delivery(row) for row in rows]
