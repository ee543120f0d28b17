"""Copy the metadata from one database to another (``cargohold migrate-metadata``).

Written over SQLAlchemy Core and the tables of ``schema.py``, so any pair of supported
databases works (SQLite → PostgreSQL is the usual one). What it guarantees:

* **The source is only read.** SQLite is opened with ``query_only``, PostgreSQL in a
  read-only transaction. One transaction (a snapshot) serves the whole copy and its
  verification, so the copy is consistent even if something writes meanwhile; a fresh
  count at the end tells whether something did (then the run fails: stop the servers).
* **The destination gets the same schema first** (Alembic, to the same head as the
  source), then every table in foreign-key order, in batches streamed from the source
  in primary-key order (memory is bounded by the batch size).
* **Resumable.** Each batch is written in one destination transaction together with
  the last primary key it copied, in a progress table (``cargohold_migration``). A run
  killed at any moment continues after the last committed batch; rows are upserted by
  primary key, so nothing is ever duplicated. The progress table is dropped once the
  destination is verified.
* **Verified.** Every table's rows are counted and fingerprinted on both sides (an
  order-independent sum of SHA-256 over each row's canonical values); any difference
  fails the run and marks the table to be copied again on ``--resume``.
* **Sequences** behind auto-increment keys are moved past the copied ids on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
import structlog
from alembic.util import CommandError
from sqlalchemy import event

from cargohold.metadata import migrate, schema
from cargohold.metadata.database import Database

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable

    from sqlalchemy.engine import Connection, Engine

log = structlog.get_logger("cargohold.migrate")

PROGRESS_TABLE = "cargohold_migration"
SUPPORTED = ("sqlite", "postgresql")
_PROGRESS_EVERY = 5.0  # seconds between progress lines within one table
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


@dataclass(frozen=True, slots=True)
class TableResult:
    name: str
    rows: int  # in the source snapshot (and, verified, in the destination)
    copied: int  # rows written by this run
    fingerprint: str


@dataclass(slots=True)
class TransferResult:
    source: str
    destination: str
    tables: list[TableResult] = field(default_factory=list)
    resumed: bool = False
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(table.rows for table in self.tables)

    @property
    def copied(self) -> int:
        return sum(table.copied for table in self.tables)


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


def _same_database(a: sa.URL, b: sa.URL) -> bool:
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


def _source_engine(url: sa.URL) -> Engine:
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


def _unavailable(url: sa.URL, exc: sa.exc.DBAPIError, what: str) -> DatabaseUnavailable:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    hint = (
        "Check that the file is readable and not locked by a crashed process."
        if url.get_backend_name() == "sqlite"
        else "Check that the server runs and accepts connections from here, the host, "
        "port, user and password in the URL, and that the database exists "
        "(createdb -O USER DATABASE)."
    )
    return DatabaseUnavailable(f"{what} {shown(url)}: {reason}. {hint}")


# -- the copy --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Progress:
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
    def decode(cls, text: str) -> _Progress:
        value = json.loads(text)
        return cls(value["last"], value["rows"], value["done"], value["clear"])


class _Destination:
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
            raise _unavailable(
                self.url, exc, "cannot connect to the destination"
            ) from None
        try:
            migrate.upgrade(self.db)
        except sa.exc.DBAPIError as exc:
            raise _unavailable(
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
            return {t.name: _count(conn, t) for t in tables}

        return self.db.run_sync(count)

    def write_batch(
        self,
        table: sa.Table,
        rows: list[dict[str, Any]],
        state: _Progress,
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
            return _fingerprint(conn, table)

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


def _count(conn: Connection, table: sa.Table) -> int:
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


def _fingerprint(conn: Connection, table: sa.Table) -> tuple[int, str]:
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


class MetadataTransfer:
    """One ``migrate-metadata`` run from ``source`` into ``destination``.

    ``after_batch(table, rows_copied)`` is called after each committed batch (progress
    reporting; tests interrupt a run from it).
    """

    def __init__(
        self,
        source: str,
        destination: str,
        *,
        batch_size: int = 1000,
        resume: bool = False,
        after_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self.source_url = parse_url(source)
        self.destination_url = parse_url(destination)
        if _same_database(self.source_url, self.destination_url):
            msg = (
                "the source and the destination are the same database: "
                f"{shown(self.source_url)}"
            )
            raise BadDatabaseUrl(msg)
        if batch_size < 1:
            msg = "the batch size must be at least 1"
            raise BadDatabaseUrl(msg)
        self.batch_size = batch_size
        self.resume = resume
        self.after_batch = after_batch
        self.tables = list(schema.metadata.sorted_tables)

    def run(self) -> TransferResult:
        started = time.monotonic()
        result = TransferResult(shown(self.source_url), shown(self.destination_url))
        source = _source_engine(self.source_url)
        destination = _Destination(self.destination_url)
        try:
            try:
                snapshot = source.connect()
            except sa.exc.DBAPIError as exc:
                raise _unavailable(
                    self.source_url, exc, "cannot read the source"
                ) from None
            with snapshot:
                version = _data_version(snapshot)
                self._check_source_schema(snapshot)
                destination.prepare()
                self._transfer(snapshot, destination, result)
                snapshot.rollback()  # ends the snapshot: what follows sees the present
                self._check_source_unchanged(snapshot, result, version)
            destination.drop_progress()
        finally:
            destination.close()
            source.dispose()
        result.seconds = time.monotonic() - started
        log.info(
            "metadata migrated and verified",
            tables=len(result.tables),
            rows=result.rows,
            copied=result.copied,
            seconds=round(result.seconds, 2),
        )
        return result

    def _transfer(
        self, snapshot: Connection, destination: _Destination, result: TransferResult
    ) -> None:
        """Copy what is left, then verify (copying what differs once more)."""
        counts = {t.name: _count(snapshot, t) for t in self.tables}
        states = self._claim(destination, counts)
        result.resumed = any(s.rows or s.done for s in states.values())
        log.info(
            "migrating metadata",
            source=result.source,
            destination=result.destination,
            tables=len(self.tables),
            rows=sum(counts.values()),
            resumed=result.resumed,
        )
        copied = {
            t.name: self._copy(snapshot, destination, t, states[t.name], counts)
            for t in self.tables
        }
        destination.reset_sequences(self.tables)
        result.tables, differing = self._verify(snapshot, destination, copied)
        if differing:
            # Written since an interrupted run, with the same row counts (or written
            # into the destination): copy those tables again, whole, once.
            log.warning("copying again the tables that differ", tables=differing)
            for table in self.tables:
                if table.name in differing:
                    again = _Progress(clear=True)
                    copied[table.name] += self._copy(
                        snapshot, destination, table, again, counts
                    )
            destination.reset_sequences(self.tables)
            result.tables, differing = self._verify(snapshot, destination, copied)
        if differing:
            msg = (
                f"the destination differs from the source in {', '.join(differing)} "
                "after copying them again. Is something writing to the destination? "
                "Stop it, then run again with --resume."
            )
            raise VerificationFailed(msg)

    def _check_source_schema(self, snapshot: Connection) -> None:
        try:
            found = migrate.current(snapshot)
        except sa.exc.DBAPIError as exc:
            raise _unavailable(self.source_url, exc, "cannot read the source") from None
        wanted = migrate.heads()
        if not found:
            msg = (
                f"{shown(self.source_url)} holds no cargohold schema "
                "(no alembic_version table)"
            )
            raise DatabaseUnavailable(msg)
        if found != wanted:
            msg = (
                f"the source {shown(self.source_url)} is at schema revision "
                f"{', '.join(sorted(found))}; this cargohold copies revision "
                f"{', '.join(sorted(wanted))}. Run `cargohold db upgrade` on the "
                "source first (with the servers stopped), then migrate."
            )
            raise DatabaseUnavailable(msg)

    def _claim(
        self, destination: _Destination, counts: dict[str, int]
    ) -> dict[str, _Progress]:
        """Check the destination may be written, and read where each table stands."""
        fresh = {t.name: _Progress() for t in self.tables}
        source_note = json.dumps({"source": shown(self.source_url), "counts": counts})
        if not destination.has_progress():
            occupied = {n: c for n, c in destination.counts(self.tables).items() if c}
            if occupied and not self.resume:
                listed = ", ".join(
                    f"{n} ({c} rows)" for n, c in sorted(occupied.items())
                )
                msg = (
                    f"the destination {shown(self.destination_url)} already holds "
                    f"data: {listed}. Migrate into an empty database; if it holds an "
                    "earlier "
                    "migration of this same source, run again with --resume (rows are "
                    "upserted by primary key and the result verified)."
                )
                raise DestinationInUse(msg)
            destination.create_progress()
            destination.write_progress("source", source_note)
            return fresh
        if not self.resume:
            msg = (
                f"the destination {shown(self.destination_url)} holds an interrupted "
                "migration: run the same command again with --resume to continue it"
            )
            raise DestinationInUse(msg)
        recorded = destination.read_progress()
        before = json.loads(recorded.get("source", "{}"))
        if before.get("source") not in (None, shown(self.source_url)):
            msg = (
                f"the destination holds an interrupted migration from another source, "
                f"{before['source']}; use a new empty database"
            )
            raise DestinationInUse(msg)
        states = {
            name: _Progress.decode(recorded[f"table:{name}"])
            if f"table:{name}" in recorded
            else _Progress()
            for name in fresh
        }
        for name, count in counts.items():
            was = before.get("counts", {}).get(name)
            if was is not None and was != count:
                # Written since the interrupted run: copy that table again, whole.
                log.warning(
                    "source changed since the last run",
                    table=name,
                    rows_then=was,
                    rows_now=count,
                )
                states[name] = _Progress(clear=True)
        destination.write_progress("source", source_note)
        return states

    def _copy(
        self,
        snapshot: Connection,
        destination: _Destination,
        table: sa.Table,
        state: _Progress,
        counts: dict[str, int],
    ) -> int:
        """Copy what is left of ``table``; returns the rows written by this run."""
        total = counts[table.name]
        if state.done:
            log.info("table already copied", table=table.name, rows=total)
            return 0
        keys = list(table.primary_key.columns)
        names = [column.name for column in table.columns]
        positions = [names.index(column.name) for column in keys]
        query = sa.select(table).order_by(*keys)
        if state.last is not None:
            query = query.where(sa.tuple_(*keys) > sa.tuple_(*state.last))
        if total:
            log.info("copying table", table=table.name, rows=total, already=state.rows)
        started = last_note = time.monotonic()
        written = already = state.rows
        clear = state.clear
        result = snapshot.execution_options(yield_per=self.batch_size).execute(query)
        try:
            for batch in result.partitions():
                rows = [dict(zip(names, row, strict=True)) for row in batch]
                written += len(rows)
                last = [batch[-1][i] for i in positions]
                state = _Progress(last, written, done=False)
                self._write(destination, table, rows, state, clear=clear)
                clear = False
                if self.after_batch is not None:
                    self.after_batch(table.name, written)
                if time.monotonic() - last_note > _PROGRESS_EVERY:
                    last_note = time.monotonic()
                    log.info(
                        "copying table", table=table.name, rows=total, copied=written
                    )
        finally:
            result.close()
        self._write(
            destination,
            table,
            [],
            _Progress(state.last, written, done=True),
            clear=clear,
        )
        log.info(
            "table copied",
            table=table.name,
            rows=written,
            seconds=round(time.monotonic() - started, 2),
        )
        return written - already

    def _write(
        self,
        destination: _Destination,
        table: sa.Table,
        rows: list[dict[str, Any]],
        state: _Progress,
        *,
        clear: bool,
    ) -> None:
        try:
            destination.write_batch(table, rows, state, clear=clear)
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            msg = (
                f"could not write table {table.name} to {shown(self.destination_url)} "
                f"(batch ending at key {state.last}): {reason}. Rows before it are "
                "saved; fix the cause and run again with --resume."
            )
            raise TransferError(msg) from None

    def _verify(
        self,
        snapshot: Connection,
        destination: _Destination,
        copied: dict[str, int],
    ) -> tuple[list[TableResult], list[str]]:
        """Count and fingerprint every table on both sides; the tables that differ."""
        results, differing = [], []
        for table in self.tables:
            rows, fingerprint = _fingerprint(snapshot, table)
            their_rows, theirs = destination.fingerprint(table)
            same = (rows, fingerprint) == (their_rows, theirs)
            (log.info if same else log.warning)(
                "table verified" if same else "table differs",
                table=table.name,
                rows=rows,
                destination_rows=their_rows,
                checksum=fingerprint[:16],
                destination_checksum=theirs[:16],
            )
            if not same:
                differing.append(table.name)
                destination.write_progress(
                    f"table:{table.name}", _Progress(clear=True).encode()
                )
            results.append(
                TableResult(table.name, rows, copied[table.name], fingerprint)
            )
        return results, differing

    def _check_source_unchanged(
        self, conn: Connection, result: TransferResult, version: int | None
    ) -> None:
        """Fail if anything wrote to the source during the copy (a live server)."""
        counts = {table.name: table.rows for table in result.tables}
        now = {t.name: _count(conn, t) for t in self.tables}
        written = version is not None and _data_version(conn) != version
        conn.rollback()
        changed = {n: (counts[n], now[n]) for n in counts if counts[n] != now[n]}
        if changed or written:
            listed = ", ".join(
                f"{n} {a} → {b}" for n, (a, b) in sorted(changed.items())
            )
            msg = (
                "the source was written during the migration"
                f"{f' ({listed} rows)' if listed else ''}: a server is still using "
                "it. The destination holds the source as it was when the migration "
                "started. Stop every server using the source, then run again with "
                "--resume."
            )
            raise VerificationFailed(msg)


def _data_version(conn: Connection) -> int | None:
    """SQLite's ``data_version``: it moves when another connection commits."""
    if conn.dialect.name != "sqlite":
        return None
    return int(conn.exec_driver_sql("PRAGMA data_version").scalar_one())
