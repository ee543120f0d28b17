"""Test helpers for the outbox and inbox: rows as the fan-out writes them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.outbox import EMAIL, OutboxMessage, enqueue_in

if TYPE_CHECKING:
    from cargohold.metadata.database import Database

DIGEST = "sha256:" + "a" * 64


def notice_document(advisory: str) -> dict[str, Any]:
    return {
        "advisory": advisory,
        "title": f"{advisory} title",
        "severity": "high",
        "state": "current",
        "digests": [DIGEST],
        "fixed_in": "acme/app:2",
    }


def add_notice(db: Database, identity: str, advisory: str, *, at: float) -> int:
    """Insert one inbox notice; returns its id."""
    query = sa.insert(t.notices).values(
        identity=identity,
        advisory=advisory,
        revision=1,
        document=json.dumps(notice_document(advisory)),
        created_at=at,
    )

    def run(conn: sa.Connection) -> int:
        key = conn.execute(query).inserted_primary_key
        assert key is not None
        return int(key[0])

    return db.run_sync(run)


def email_message(
    to: str, *, advisory: str = "ADV-1", revision: int = 1
) -> OutboxMessage:
    """An ``email`` outbox message as the fan-out enqueues it."""
    document = notice_document(advisory) | {
        "url": f"https://example.com/{advisory}",
        "description": "Upgrade to 2.",
    }
    payload = {
        "to": to,
        "advisory": advisory,
        "revision": revision,
        "document": document,
        "images": [
            {
                "identity": "user:alice",
                "repository": "acme/app",
                "digest": DIGEST,
                "last_pull": 1_700_000_000.0,
            }
        ],
    }
    return OutboxMessage(f"email:{advisory}:{revision}:{to}", EMAIL, payload)


def enqueue_emails(db: Database, addresses: list[str], *, now: float) -> None:
    messages = [email_message(address) for address in addresses]
    db.run_sync(lambda conn: enqueue_in(conn, messages, now=now))
