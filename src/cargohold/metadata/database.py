"""One SQLAlchemy engine pair with the access pattern measured in ``shared/STACK.md``.

* **Reads** on SQLite run synchronously on the event loop: a primary-key lookup on a
  warm WAL database costs ~30 µs, far less than any hop to a thread. On PostgreSQL they
  run in a worker thread, where the network round trip would otherwise block the loop.
  The hottest point queries (manifest by tag or digest, blob link) skip SQLAlchemy's
  execution machinery on SQLite: ``fetch_row`` runs the statement's compiled SQL on one
  plain read-only ``sqlite3`` connection in autocommit mode (a single ``SELECT`` is its
  own consistent snapshot), which saves about two thirds of the cost of a manifest GET.
* **Writes** go through a single writer thread (one at a time per process), each in its
  own transaction; on SQLite that transaction is ``BEGIN IMMEDIATE``, so concurrent
  processes (several server workers, the CLI) serialise on the lock instead of failing
  mid-way.
"""

from __future__ import annotations

import asyncio
import importlib.util
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


class DriverMissing(RuntimeError):
    """The database URL names a driver that is not installed."""


def require_driver(url: str) -> None:
    driver = sa.engine.make_url(url).get_driver_name()
    module = {"psycopg": "psycopg", "psycopg2": "psycopg2"}.get(driver, driver)
    if importlib.util.find_spec(module) is None:
        extra = " (pip install 'cargohold[postgresql]')" if driver == "psycopg" else ""
        msg = f"database.url needs the {module!r} driver, which is not installed{extra}"
        raise DriverMissing(msg)


class Database:
    """Runs read and write functions against the configured database."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.reader = _sqlite_engine(url, begin="BEGIN")
            self.writer = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
        else:
            require_driver(url)
            # One pool per process for reads (worker threads) and the writer thread.
            self.reader = self.writer = sa.create_engine(
                url,
                pool_pre_ping=True,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=pool_timeout,
            )
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="db-writer")
        self._hot_connection: sqlite3.Connection | None = None
        self._compiled: dict[
            int, tuple[sa.Select[Any], str, tuple[str, ...], dict[str, Any]]
        ] = {}

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    async def fetch_row(
        self, statement: sa.Select[Any], params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row of a hot point query (named ``bindparam``s in ``params``)."""
        if not self.is_sqlite:
            row = await self.read(lambda conn: conn.execute(statement, params).first())
            return tuple(row) if row is not None else None
        found: tuple[Any, ...] | None = self._hot_cursor(statement, params).fetchone()
        return found

    async def fetch_all(
        self, statement: sa.Select[Any], params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """Every row of a hot query; like ``fetch_row``."""
        if not self.is_sqlite:
            rows = await self.read(lambda conn: conn.execute(statement, params).all())
            return [tuple(row) for row in rows]
        return self._hot_cursor(statement, params).fetchall()

    def _hot_cursor(
        self, statement: sa.Select[Any], params: dict[str, Any]
    ) -> sqlite3.Cursor:
        # Statements are module or instance constants, compiled once per process.
        compiled = self._compiled.get(id(statement))
        if compiled is None or compiled[0] is not statement:
            sql = statement.compile(dialect=self.reader.dialect)
            names = tuple(sql.positiontup or ())
            compiled = (statement, str(sql), names, dict(sql.params))
            self._compiled[id(statement)] = compiled
        _, sql_text, names, defaults = compiled
        values = [params[n] if n in params else defaults[n] for n in names]
        return self._hot().execute(sql_text, values)

    def _hot(self) -> sqlite3.Connection:
        if self._hot_connection is None:
            path = sa.engine.make_url(self.url).database or ""
            connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA busy_timeout=10000")
            connection.execute("PRAGMA query_only=ON")
            self._hot_connection = connection
        return self._hot_connection

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
        if self._hot_connection is not None:
            self._hot_connection.close()
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
