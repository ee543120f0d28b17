"""Schema migrations (Alembic), run on start and by ``cargohold db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    import sqlalchemy as sa

    from cargohold.metadata.database import Database

_SCRIPTS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent; safe to run on every start)."""
    with db.writer.begin() as connection:
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def heads() -> frozenset[str]:
    """The revisions this version of cargohold migrates a database to."""
    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def current(connection: sa.Connection) -> frozenset[str]:
    """The revisions a database is at (empty: no cargohold schema); reads only."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())
