"""``SqlScheduleStore``: leases on the ``schedules`` table (SQLite, PostgreSQL).

A job's row says when it is next due (``next_run_at``) and who holds it until when
(``holder``, ``lease_until``). Taking it is one conditional ``UPDATE`` (or the
``INSERT`` of a job never run), so of any number of processes exactly one wins a due
job; a holder that died loses its lease when ``lease_until`` passes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata.database import Database, insert_ignore
from cargohold.metadata.schema import schedules

_S = schedules.c


class SqlScheduleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def try_acquire(
        self, name: str, holder: str, now: float, lease_seconds: float
    ) -> bool:
        take = (
            sa.update(schedules)
            .where(_S.name == name, _S.next_run_at <= now, _S.lease_until <= now)
            .values(holder=holder, lease_until=now + lease_seconds)
            .execution_options(preserve_rowcount=True)
        )
        first = insert_ignore(
            self._db,
            schedules,
            name=name,
            next_run_at=now,
            lease_until=now + lease_seconds,
            holder=holder,
            # Without it psycopg's INSERT rowcount is -1 (see sql_accounts._inserted).
        ).execution_options(preserve_rowcount=True)

        def acquire(conn: Connection) -> bool:
            if conn.execute(take).rowcount == 1:
                return True
            return conn.execute(first).rowcount == 1

        return await self._db.write(acquire)

    async def finish(self, name: str, holder: str, next_run_at: float) -> bool:
        release = (
            sa.update(schedules)
            .where(_S.name == name, _S.holder == holder)
            .values(next_run_at=next_run_at, lease_until=0.0, holder="")
            .execution_options(preserve_rowcount=True)
        )
        return await self._db.write(lambda conn: conn.execute(release).rowcount == 1)
