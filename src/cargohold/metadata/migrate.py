"""Schema migrations (Alembic), run on start and by ``cargohold db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from cargohold.metadata.database import Database

_SCRIPTS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key: replicas starting at once migrate one after the other.
_MIGRATION_LOCK = 0x636172676F  # "cargo"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent; safe to run on every start)."""
    with db.writer.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Held to the end of this transaction: a second replica waits, then finds
            # the schema at head and does nothing (SQLite's BEGIN IMMEDIATE does the
            # same there).
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
            )
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(db: Database, revision: str) -> None:
    """Take the schema back to ``revision`` (``base``: no cargohold tables)."""
    with db.writer.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def heads() -> frozenset[str]:
    """The revisions this version of cargohold migrates a database to."""
    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def current(connection: sa.Connection) -> frozenset[str]:
    """The revisions a database is at (empty: no cargohold schema); reads only."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())
