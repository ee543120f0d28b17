"""The ``InstrumentStore`` contract (``cargohold.metadata.instruments``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from cargohold.metadata.schema import outbox, uploads
from cargohold.metadata.sql_instruments import SqlInstrumentStore

if TYPE_CHECKING:
    from cargohold.metadata.database import Database
    from cargohold.metadata.instruments import InstrumentStore


def _message(key: str, channel: str, state: str) -> dict[str, object]:
    return {
        "key": key,
        "channel": channel,
        "payload": "{}",
        "state": state,
        "attempts": 0,
        "next_attempt_at": 0.0,
        "lease_until": 0.0,
        "holder": "",
        "created_at": 0.0,
        "updated_at": 0.0,
    }


async def test_empty_database(db: Database) -> None:
    store: InstrumentStore = SqlInstrumentStore(db)
    await store.ping()
    gauges = await store.gauges()
    assert gauges.outbox == ()
    assert gauges.upload_sessions == 0
    assert (gauges.gc.runs, gauges.gc.bytes_freed, gauges.gc.blobs_deleted) == (0, 0, 0)
    assert gauges.gc.last_finished_at is None


async def test_outbox_uploads_and_gc_runs_are_counted(db: Database) -> None:
    store: InstrumentStore = SqlInstrumentStore(db)
    rows = [
        _message("a", "email", "pending"),
        _message("b", "email", "pending"),
        _message("c", "email", "dead"),
        _message("d", "webhook", "done"),
    ]
    session = {"id": "u1", "repository": "r", "size": 0}
    await db.write(
        lambda conn: (
            conn.execute(sa.insert(outbox), rows),
            conn.execute(
                sa.insert(uploads).values(**session, created_at=0.0, updated_at=0.0)
            ),
        )
    )
    await store.record_gc(finished_at=100.0, blobs_deleted=2, bytes_freed=300)
    await store.record_gc(finished_at=200.0, blobs_deleted=1, bytes_freed=50)
    gauges = await store.gauges()
    assert sorted(gauges.outbox) == [
        ("email", "dead", 1),
        ("email", "pending", 2),
        ("webhook", "done", 1),
    ]
    assert gauges.upload_sessions == 1
    assert gauges.gc.runs == 2
    assert gauges.gc.bytes_freed == 350
    assert gauges.gc.blobs_deleted == 3
    assert gauges.gc.last_finished_at == 200.0
