"""The two ends of a metadata transfer (``transfer.py``): URLs, a read-only source, the
destination (schema, progress table, upserts, sequences) and table fingerprints."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from alembic.util import CommandError
from sqlalchemy import event

from cargohold.metadata import migrate
from cargohold.metadata.database import Database

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable

    from sqlalchemy.engine import Connection, Engine

PROGRESS_TABLE = "cargohold_migration"
SUPPORTED = ("sqlite", "postgresql")
_FINGERPRINT_BATCH = 5000

_progress_metadata = sa.MetaData()
progress = sa.Table(
    PROGRESS_TABLE,
    _progress_metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON
)


class TransferError(Exception):
    """A migration that cannot go on; ``exit_code`` is what the command exits with."""

    exit_code: ClassVar[int] = 1


class BadDatabaseUrl(TransferError):
    """Not a URL of a database cargohold supports (or its driver is missing)."""

    exit_code = 2


class DatabaseUnavailable(TransferError):
    """A database cannot be reached, or is not usable as it is."""

    exit_code = 3


class DestinationInUse(TransferError):
    """The destination holds data this run would not account for."""

    exit_code = 4


class VerificationFailed(TransferError):
    """The copy differs from the source (or the source changed meanwhile)."""


# -- URLs and connections -------------------------------------------------------------


def parse_url(text: str) -> sa.URL:
    """A database URL cargohold supports; ``BadDatabaseUrl`` explains what is wrong."""
    try:
        url = sa.engine.make_url(text)
    except sa.exc.ArgumentError:
        msg = (
            f"{_hide_password(text)!r} is not a database URL; examples: "
            "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE, "
            "sqlite:////absolute/path/cargohold.db"
        )
        raise BadDatabaseUrl(msg) from None
    if url.get_backend_name() not in SUPPORTED:
        msg = (
            f"{shown(url)}: cargohold keeps metadata in SQLite or PostgreSQL, "
            f"not {url.get_backend_name()!r}"
        )
        raise BadDatabaseUrl(msg)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        msg = f"{shown(url)}: name a database file (sqlite:////path/cargohold.db)"
        raise BadDatabaseUrl(msg)
    return url


def shown(url: sa.URL) -> str:
    """The URL without its password, for messages and logs."""
    return url.render_as_string(hide_password=True)


def _hide_password(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not (sep and at and ":" in credentials):
        return text
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def same_database(a: sa.URL, b: sa.URL) -> bool:
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return Path(a.database or "").resolve() == Path(b.database or "").resolve()
    return (a.host, a.port or 5432, a.database) == (b.host, b.port or 5432, b.database)


def _engine(url: sa.URL, **options: Any) -> Engine:
    try:
        return sa.create_engine(url, **options)
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        msg = (
            f"{shown(url)}: no driver for {url.drivername!r} ({exc}). For PostgreSQL "
            "use postgresql+psycopg://… (psycopg 3: pip install 'psycopg[binary]')"
        )
        raise BadDatabaseUrl(msg) from None


def source_engine(url: sa.URL) -> Engine:
    """An engine that can only read: one snapshot per transaction."""
    if url.get_backend_name() != "sqlite":
        engine = _engine(url, pool_pre_ping=True)
        return engine.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    path = Path(url.database or "")
    if not path.is_file():
        # Connecting would create an empty database file where the source should be.
        msg = f"no SQLite database at {path} (the source must exist)"
        raise DatabaseUnavailable(msg)
    engine = _engine(url)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA query_only=ON")
        dbapi_connection.execute("PRAGMA busy_timeout=10000")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A deferred transaction: its first read fixes the snapshot (WAL).
        connection.exec_driver_sql("BEGIN")

    return engine


def unavailable(url: sa.URL, exc: sa.exc.DBAPIError, what: str) -> DatabaseUnavailable:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    hint = (
        "Check that the file is readable and not locked by a crashed process."
        if url.get_backend_name() == "sqlite"
        else "Check that the server runs and accepts connections from here, the host, "
        "port, user and password in the URL, and that the database exists "
        "(createdb -O USER DATABASE)."
    )
    return DatabaseUnavailable(f"{what} {shown(url)}: {reason}. {hint}")


# -- the destination -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """How far one table's copy got (a row of the progress table)."""

    last: list[Any] | None = None  # the last primary key committed, in source order
    rows: int = 0
    done: bool = False
    clear: bool = False  # empty the destination table first (it differed)

    def encode(self) -> str:
        return json.dumps(
            {
                "last": self.last,
                "rows": self.rows,
                "done": self.done,
                "clear": self.clear,
            }
        )

    @classmethod
    def decode(cls, text: str) -> Progress:
        value = json.loads(text)
        return cls(value["last"], value["rows"], value["done"], value["clear"])


class Destination:
    """The destination database: schema, progress records and batched upserts."""

    def __init__(self, url: sa.URL) -> None:
        self.url = url
        try:
            self.db = Database(url.render_as_string(hide_password=False))
        except (sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
            msg = f"{shown(url)}: no driver for {url.drivername!r} ({exc})"
            raise BadDatabaseUrl(msg) from None
        self.dialect = self.db.dialect
        self._upserts: dict[str, sa.Insert] = {}

    def prepare(self) -> None:
        """Connect, then bring the schema to the head revision."""
        try:
            with self.db.writer.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as exc:
            raise unavailable(
                self.url, exc, "cannot connect to the destination"
            ) from None
        try:
            migrate.upgrade(self.db)
        except sa.exc.DBAPIError as exc:
            raise unavailable(
                self.url, exc, "cannot create the schema in the destination"
            ) from None
        except CommandError as exc:  # e.g. a revision this cargohold does not know
            msg = (
                f"cannot migrate the destination {shown(self.url)} to this cargohold's "
                f"schema: {exc}. Is it a database of a newer cargohold?"
            )
            raise DatabaseUnavailable(msg) from None

    def has_progress(self) -> bool:
        return self.db.run_sync(lambda conn: sa.inspect(conn).has_table(PROGRESS_TABLE))

    def create_progress(self) -> None:
        self.db.run_sync(lambda conn: progress.create(conn, checkfirst=True))

    def drop_progress(self) -> None:
        self.db.run_sync(lambda conn: progress.drop(conn, checkfirst=True))

    def read_progress(self) -> dict[str, str]:
        rows = self.db.run_sync(lambda conn: conn.execute(sa.select(progress)).all())
        return dict(rows)

    def write_progress(self, name: str, value: str) -> None:
        self.db.run_sync(lambda conn: self._note(conn, name, value))

    def _note(self, conn: Connection, name: str, value: str) -> None:
        conn.execute(self._upsert(progress), [{"name": name, "value": value}])

    def counts(self, tables: Iterable[sa.Table]) -> dict[str, int]:
        def count(conn: Connection) -> dict[str, int]:
            return {t.name: count_rows(conn, t) for t in tables}

        return self.db.run_sync(count)

    def write_batch(
        self,
        table: sa.Table,
        rows: list[dict[str, Any]],
        state: Progress,
        *,
        clear: bool = False,
    ) -> None:
        """Upsert ``rows`` and record ``state`` in one transaction (all or nothing)."""

        def write(conn: Connection) -> None:
            if clear:
                conn.execute(table.delete())
            if rows:
                conn.execute(self._upsert(table), rows)
            self._note(conn, f"table:{table.name}", state.encode())

        self.db.run_sync(write)

    def _upsert(self, table: sa.Table) -> sa.Insert:
        """INSERT, or UPDATE the row with the same primary key (idempotent)."""
        statement = self._upserts.get(table.name)
        if statement is not None:
            return statement
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql as dialect  # noqa: PLC0415
        else:
            from sqlalchemy.dialects import sqlite as dialect  # type: ignore[no-redef]  # noqa: PLC0415
        insert = dialect.insert(table)
        keys = [column.name for column in table.primary_key.columns]
        others = {
            column.name: insert.excluded[column.name]
            for column in table.columns
            if column.name not in keys
        }
        statement = (
            insert.on_conflict_do_update(index_elements=keys, set_=others)
            if others
            else insert.on_conflict_do_nothing(index_elements=keys)
        )
        self._upserts[table.name] = statement
        return statement

    def reset_sequences(self, tables: Iterable[sa.Table]) -> None:
        """Move each auto-increment sequence past the largest copied id (PostgreSQL).

        SQLite needs nothing: an ``INTEGER PRIMARY KEY`` continues after its maximum.
        """
        if self.dialect != "postgresql":
            return

        def reset(conn: Connection) -> None:
            for table in tables:
                column = _serial_column(table)
                if column is None:
                    continue
                sequence = conn.execute(
                    sa.select(sa.func.pg_get_serial_sequence(table.name, column.name))
                ).scalar()
                if sequence is None:
                    continue
                following = sa.select(
                    sa.func.coalesce(sa.func.max(column), 0) + 1
                ).scalar_subquery()
                conn.execute(sa.select(sa.func.setval(sequence, following, sa.false())))

        self.db.run_sync(reset)

    def fingerprint(self, table: sa.Table) -> tuple[int, str]:
        with self.db.reader.connect() as conn:
            return fingerprint_rows(conn, table)

    def close(self) -> None:
        # Only ``run_sync`` wrote: the database's writer thread was never started.
        self.db.reader.dispose()
        self.db.writer.dispose()


def _serial_column(table: sa.Table) -> sa.Column[Any] | None:
    keys = list(table.primary_key.columns)
    if len(keys) != 1:
        return None
    (column,) = keys
    if not isinstance(column.type, sa.Integer) or column.autoincrement is False:
        return None
    return column


def count_rows(conn: Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# Canonical text of a value by its column's type, so the same row reads the same from
# either database (SQLite may hand back 0 for a float column, PostgreSQL 0.0).
def _canonical(kind: str, value: Any) -> str:
    if value is None:
        return "-"
    if kind == "bool":
        return "t" if value else "f"
    if kind == "int":
        return str(int(value))
    if kind == "float":
        return float(value).hex()
    if kind == "bytes":
        return bytes(value).hex()
    return str(value)


def _kind(column: sa.Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.Integer):
        return "int"
    if isinstance(kind, sa.Float):
        return "float"
    if isinstance(kind, sa.LargeBinary):
        return "bytes"
    return "text"


def fingerprint_rows(conn: Connection, table: sa.Table) -> tuple[int, str]:
    """Rows and an order-independent checksum of their content (sum of SHA-256)."""
    kinds = [_kind(column) for column in table.columns]
    total = rows = 0
    result = conn.execution_options(yield_per=_FINGERPRINT_BATCH).execute(
        sa.select(table)
    )
    for row in result:
        canonical = json.dumps(
            [_canonical(k, v) for k, v in zip(kinds, row, strict=True)]
        )
        total += int.from_bytes(hashlib.sha256(canonical.encode()).digest(), "big")
        rows += 1
    result.close()
    return rows, f"{total % 2**256:064x}"


def data_version(conn: Connection) -> int | None:
    """SQLite's ``data_version``: it moves when another connection commits."""
    if conn.dialect.name != "sqlite":
        return None
    return int(conn.exec_driver_sql("PRAGMA data_version").scalar_one())
