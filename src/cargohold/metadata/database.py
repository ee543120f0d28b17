"""One SQLAlchemy engine pair with the access pattern measured in ``shared/STACK.md``.

* **Reads** on SQLite run synchronously on the event loop: a primary-key lookup on a
  warm WAL database costs ~30 µs, far less than any hop to a thread. On PostgreSQL they
  run in a worker thread, where the network round trip would otherwise block the loop.
* **Writes** go through a single writer thread (one at a time per process), each in its
  own transaction; on SQLite that transaction is ``BEGIN IMMEDIATE``, so concurrent
  processes (several server workers, the CLI) serialise on the lock instead of failing
  mid-way.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: an acknowledged commit survives power loss, not only a process crash.
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)


def _sqlite_engine(url: str, *, begin: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin.
        dbapi_connection.isolation_level = None
        for pragma in _SQLITE_PRAGMAS:
            dbapi_connection.execute(pragma)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


class Database:
    """Runs read and write functions against the configured database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.reader = _sqlite_engine(url, begin="BEGIN")
            self.writer = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
        else:
            self.reader = self.writer = sa.create_engine(url, pool_pre_ping=True)
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="db-writer")

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    async def read(self, fn: Callable[[Connection], T]) -> T:
        if self.is_sqlite:
            return self._run(self.reader, fn)
        return await anyio.to_thread.run_sync(self._run, self.reader, fn)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._write_thread, self._run, self.writer, fn
        )

    @staticmethod
    def _run(engine: Engine, fn: Callable[[Connection], T]) -> T:
        with engine.begin() as connection:
            return fn(connection)

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run a write function outside the event loop (CLI, migrations)."""
        return self._run(self.writer, fn)

    async def close(self) -> None:
        self._write_thread.shutdown(wait=True)
        self.reader.dispose()
        self.writer.dispose()


def insert_ignore(database: Database, table: sa.Table, **values: Any) -> sa.Executable:
    """An INSERT that does nothing when the primary key already exists."""
    if database.dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite  # noqa: PLC0415

    return sqlite.insert(table).values(**values).on_conflict_do_nothing()
