"""``SqlInstrumentStore``: what ``/metrics`` and ``/readyz`` read from the database.

Read at scrape time, so every server process reports the same numbers: the outbox
by channel and state, open upload sessions, and the ``gc_runs`` that ``cargohold gc``
(its own process) records.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata.database import Database
from cargohold.metadata.instruments import GcTotals, StoreGauges
from cargohold.metadata.schema import gc_runs, outbox, uploads

_OUTBOX_DEPTH = sa.select(outbox.c.channel, outbox.c.state, sa.func.count()).group_by(
    outbox.c.channel, outbox.c.state
)
_UPLOADS = sa.select(sa.func.count()).select_from(uploads)
_GC = sa.select(
    sa.func.count(),
    sa.func.coalesce(sa.func.sum(gc_runs.c.bytes_freed), 0),
    sa.func.coalesce(sa.func.sum(gc_runs.c.blobs_deleted), 0),
    sa.func.max(gc_runs.c.finished_at),
)


class SqlInstrumentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def ping(self) -> None:
        """Raise if the database cannot answer a query."""
        await self._db.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())

    async def gauges(self) -> StoreGauges:
        def read(conn: Connection) -> StoreGauges:
            depth = tuple(
                (str(channel), str(state), int(count))
                for channel, state, count in conn.execute(_OUTBOX_DEPTH)
            )
            sessions = int(conn.execute(_UPLOADS).scalar_one())
            runs, freed, deleted, last = conn.execute(_GC).one()
            return StoreGauges(
                outbox=depth,
                upload_sessions=sessions,
                gc=GcTotals(int(runs), int(freed), int(deleted), last),
            )

        return await self._db.read(read)

    async def record_gc(
        self, *, finished_at: float, blobs_deleted: int, bytes_freed: int
    ) -> None:
        insert = sa.insert(gc_runs).values(
            finished_at=finished_at,
            blobs_deleted=blobs_deleted,
            bytes_freed=bytes_freed,
        )
        await self._db.write(lambda conn: conn.execute(insert))
