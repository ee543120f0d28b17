"""The migrations build exactly the schema the code declares (``metadata/schema.py``).

Code reads and writes through the SQLAlchemy tables of ``schema.py``; a column or index
that a migration forgets (or spells differently) would only show up on a real database.
Alembic's comparison of the migrated database with those tables must find nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cargohold.metadata import schema
from tests.contract.conftest import _migrated


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
