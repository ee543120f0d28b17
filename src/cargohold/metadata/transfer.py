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

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

from cargohold.metadata import migrate, schema
from cargohold.metadata.transfer_ends import (
    BadDatabaseUrl,
    DatabaseUnavailable,
    Destination,
    DestinationInUse,
    Progress,
    TransferError,
    VerificationFailed,
    count_rows,
    data_version,
    fingerprint_rows,
    parse_url,
    same_database,
    shown,
    source_engine,
    unavailable,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

log = structlog.get_logger("cargohold.migrate")

_PROGRESS_EVERY = 5.0  # seconds between progress lines within one table

__all__ = [
    "BadDatabaseUrl",
    "DatabaseUnavailable",
    "DestinationInUse",
    "MetadataTransfer",
    "TransferError",
    "TransferResult",
    "VerificationFailed",
]


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
        if same_database(self.source_url, self.destination_url):
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
        source = source_engine(self.source_url)
        destination = Destination(self.destination_url)
        try:
            try:
                snapshot = source.connect()
            except sa.exc.DBAPIError as exc:
                raise unavailable(
                    self.source_url, exc, "cannot read the source"
                ) from None
            with snapshot:
                version = data_version(snapshot)
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
        self, snapshot: Connection, destination: Destination, result: TransferResult
    ) -> None:
        """Copy what is left, then verify (copying what differs once more)."""
        counts = {t.name: count_rows(snapshot, t) for t in self.tables}
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
                    again = Progress(clear=True)
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
            raise unavailable(self.source_url, exc, "cannot read the source") from None
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
        self, destination: Destination, counts: dict[str, int]
    ) -> dict[str, Progress]:
        """Check the destination may be written, and read where each table stands."""
        fresh = {t.name: Progress() for t in self.tables}
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
            name: Progress.decode(recorded[f"table:{name}"])
            if f"table:{name}" in recorded
            else Progress()
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
                states[name] = Progress(clear=True)
        destination.write_progress("source", source_note)
        return states

    def _copy(
        self,
        snapshot: Connection,
        destination: Destination,
        table: sa.Table,
        state: Progress,
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
                state = Progress(last, written, done=False)
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
            Progress(state.last, written, done=True),
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
        destination: Destination,
        table: sa.Table,
        rows: list[dict[str, Any]],
        state: Progress,
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
        destination: Destination,
        copied: dict[str, int],
    ) -> tuple[list[TableResult], list[str]]:
        """Count and fingerprint every table on both sides; the tables that differ."""
        results, differing = [], []
        for table in self.tables:
            rows, fingerprint = fingerprint_rows(snapshot, table)
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
                    f"table:{table.name}", Progress(clear=True).encode()
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
        now = {t.name: count_rows(conn, t) for t in self.tables}
        written = version is not None and data_version(conn) != version
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
