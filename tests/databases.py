"""Databases of a test's own: a fresh PostgreSQL database per test, dropped after.

``CARGOHOLD_TEST_POSTGRES_URL`` names a database on a throwaway server
(``scripts/test.sh`` starts one); its user must be allowed to create databases. Without
it, a test asking for PostgreSQL skips (fails on CI).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa

from tests.prerequisites import skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

POSTGRES_URL_VARIABLE = "CARGOHOLD_TEST_POSTGRES_URL"
# Read at import: the autouse ``_clean_environ`` removes CARGOHOLD_* before each test.
POSTGRES_URL = os.environ.get(POSTGRES_URL_VARIABLE)


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server; dropped afterwards."""
    if not POSTGRES_URL:
        skip_or_fail(
            f"{POSTGRES_URL_VARIABLE} is not set (a throwaway PostgreSQL database; "
            "scripts/test.sh starts one when run as root)"
        )
    server = sa.engine.make_url(POSTGRES_URL)
    name = f"cargohold_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """A new empty database: ``sqlite`` (in ``directory``) or ``postgresql``."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'fresh-{uuid.uuid4().hex[:8]}.db'}"
        return
    with fresh_postgres_database() as url:
        yield url
