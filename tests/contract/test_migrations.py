"""The migrations build exactly the schema the code declares (``metadata/schema.py``).

Code reads and writes through the SQLAlchemy tables of ``schema.py``; a column or index
that a migration forgets (or spells differently) would only show up on a real database.
Alembic's comparison of the migrated database with those tables must find nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cargohold.metadata import migrate, schema
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import downgrade, upgrade
from tests.contract.conftest import _migrated, reset

VERSIONS = Path(migrate.__file__).with_name("migrations") / "versions"


def test_migrated_database_matches_schema(database_url: str) -> None:
    db = _migrated(database_url)

    def differences(conn: sa.Connection) -> list[object]:
        # SQLite ignores declared widths (migration 0004 alters them on PostgreSQL
        # only), so types are compared where they are enforced.
        context = MigrationContext.configure(
            conn, opts={"compare_type": not db.is_sqlite}
        )
        return list(compare_metadata(context, schema.metadata))

    try:
        assert db.run_sync(differences) == []
    finally:
        db.reader.dispose()
        db.writer.dispose()


def _tables(db: Database) -> set[str]:
    return set(db.run_sync(lambda conn: sa.inspect(conn).get_table_names()))


def test_every_migration_goes_down_and_up_again(database_url: str) -> None:
    """Each revision's ``downgrade`` undoes its ``upgrade``: stepping down one at a
    time to ``base`` leaves no cargohold table; the way back up matches schema.py."""
    db = _migrated(database_url)
    try:
        declared = set(schema.metadata.tables)
        assert declared <= _tables(db)
        steps = 0
        while _tables(db) - {"alembic_version"}:
            downgrade(db, "-1")
            steps += 1
            assert steps <= 100, "downgrade does not reach base"
        # One step per revision file: none was skipped or merged on the way down.
        assert steps == len(list(VERSIONS.glob("[0-9]*.py")))
        upgrade(db)
        assert declared <= _tables(db)
    finally:
        db.reader.dispose()
        db.writer.dispose()
    test_migrated_database_matches_schema(database_url)


def test_replicas_migrating_at_once_both_succeed(database_url: str) -> None:
    """Two processes starting on an empty database at the same moment (replicas of
    a cluster): one migrates, the other waits and finds the schema at head."""
    first = Database(database_url)
    if not first.is_sqlite:
        reset(first)
    second = Database(database_url)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def migrate(db: Database) -> None:
        barrier.wait(timeout=30)
        try:
            upgrade(db)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(db,)) for db in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        heads = first.run_sync(
            lambda conn: conn.execute(
                sa.text("SELECT version_num FROM alembic_version")
            ).all()
        )
        assert len(heads) == 1
    finally:
        for db in (first, second):
            db.reader.dispose()
            db.writer.dispose()
