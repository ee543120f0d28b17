"""A small delivery loop over the ``outbox`` rows of channel ``webhook``, for tests.

It stands in for the outbox worker (``registry/outbox.py``): it takes the pending rows
one by one, hands each to ``WebhookSender.deliver`` and marks it done, or counts the
failed attempt (dead if permanent). One caller at a time: it takes no leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.outbox import DEAD, DONE, PENDING, WEBHOOK, payload_of
from cargohold.metadata.sql_webhooks import SqlWebhookIndex
from cargohold.registry.webhook_delivery import WebhookDeliveryFailed, WebhookSender
from cargohold.settings import WebhookSettings


@dataclass(frozen=True)
class Item:
    id: int
    key: str
    channel: str
    payload: dict[str, Any]
    attempts: int


def _execute(statement: sa.Executable, conn: sa.Connection) -> None:
    conn.execute(statement)


async def drain_webhooks(database_url: str, settings: WebhookSettings) -> list[str]:
    """Deliver every pending webhook message once; the keys of those delivered."""
    db = Database(database_url)
    sender = WebhookSender(SqlWebhookIndex(db), settings)
    query = (
        sa.select(t.outbox)
        .where(t.outbox.c.channel == WEBHOOK, t.outbox.c.state == PENDING)
        .order_by(t.outbox.c.id)
    )
    delivered: list[str] = []
    try:
        rows = await db.read(lambda conn: conn.execute(query).mappings().all())
        for row in rows:
            item = Item(
                row["id"],
                row["key"],
                row["channel"],
                payload_of(dict(row)),
                row["attempts"],
            )
            values: dict[str, Any] = {"attempts": item.attempts + 1}
            try:
                await sender.deliver(item)
            except WebhookDeliveryFailed as exc:
                values |= {"last_error": str(exc)}
                if exc.permanent:
                    values |= {"state": DEAD}
            else:
                values |= {"state": DONE}
                delivered.append(item.key)
            update = sa.update(t.outbox).where(t.outbox.c.id == item.id)
            await db.write(partial(_execute, update.values(values)))
    finally:
        await sender.close()
        await db.close()
    return delivered
