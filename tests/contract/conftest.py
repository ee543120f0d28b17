"""Fixtures for the contract tier: every implementation of each Protocol.

``blob_store`` runs each test over ``MemoryBlobStore``, ``FilesystemBlobStore`` and
``S3BlobStore`` (on a bucket of its own in moto's S3 server, ``s3_endpoint``);
``metadata_store`` and ``account_store`` over SQLite in ``tmp_path`` and, when
``CARGOHOLD_TEST_POSTGRES_URL`` names a throwaway PostgreSQL database, over PostgreSQL
(skipped with its reason otherwise).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.metadata.sql_accounts import SqlAccountStore
from cargohold.storage.filesystem import FilesystemBlobStore
from cargohold.storage.memory import MemoryBlobStore
from cargohold.storage.s3 import S3BlobStore
from tests.prerequisites import skip_or_fail
from tests.s3server import create_bucket, storage_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from cargohold.metadata.accounts import AccountStore
    from cargohold.metadata.store import MetadataStore
    from cargohold.storage.base import BlobStore

POSTGRES_URL_VARIABLE = "CARGOHOLD_TEST_POSTGRES_URL"
# Read at collection: the autouse ``_clean_environ`` of tests/conftest.py removes every
# CARGOHOLD_* variable before any fixture of a test runs.
POSTGRES_URL = os.environ.get(POSTGRES_URL_VARIABLE)


@pytest.fixture
def anyio_backend() -> str:
    # Database.write needs the asyncio loop (its executor), whatever the root says.
    return "asyncio"


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """Where a filesystem store keeps its files; its parent must stay untouched."""
    return tmp_path / "root"


@pytest.fixture(params=["memory", "filesystem", "s3"])
async def blob_store(
    request: pytest.FixtureRequest, store_root: Path
) -> AsyncIterator[BlobStore]:
    # The declared type is the conformance check (mypy runs on tests/).
    store: BlobStore
    if request.param == "memory":
        store = MemoryBlobStore()
    elif request.param == "filesystem":
        store = FilesystemBlobStore(store_root, io_threads=2)
    else:
        store = s3_store(request.getfixturevalue("s3_endpoint"))
    try:
        yield store
    finally:
        await store.close()


def s3_store(endpoint: str, **settings: Any) -> S3BlobStore:
    """An ``S3BlobStore`` on a fresh bucket (redirects on, so they are exercised)."""
    table = storage_settings(endpoint, create_bucket(endpoint))
    table.pop("backend")
    return S3BlobStore(**{"redirect": True, **table, **settings})


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    if not POSTGRES_URL:
        skip_or_fail(
            f"{POSTGRES_URL_VARIABLE} is not set (a throwaway PostgreSQL database; "
            "scripts/test.sh starts one when run as root)"
        )
    return POSTGRES_URL


def reset(db: Database) -> None:
    """Empty the database: each test migrates a fresh schema (tables, functions)."""

    def drop(conn: sa.Connection) -> None:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))

    db.run_sync(drop)


def _migrated(database_url: str) -> Database:
    """The database at ``database_url``, emptied (PostgreSQL) and migrated."""
    db = Database(database_url)
    if not db.is_sqlite:
        reset(db)
    upgrade(db)
    return db


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A freshly migrated database, for suites that build their store from it."""
    database = _migrated(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def metadata_store(database_url: str) -> AsyncIterator[MetadataStore]:
    db = _migrated(database_url)
    # The typed assignment is the conformance check (mypy runs on tests/).
    store: MetadataStore = SqlMetadataStore(db)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def account_store(database_url: str) -> AsyncIterator[AccountStore]:
    db = _migrated(database_url)
    # The typed assignment is the conformance check (mypy runs on tests/).
    store: AccountStore = SqlAccountStore(db)
    try:
        yield store
    finally:
        await db.close()


@pytest.fixture
async def both_stores(
    database_url: str,
) -> AsyncIterator[tuple[MetadataStore, AccountStore]]:
    """A ``MetadataStore`` and an ``AccountStore`` on one database, as the app has."""
    db = _migrated(database_url)
    meta: MetadataStore = SqlMetadataStore(db)
    accounts: AccountStore = SqlAccountStore(db)
    try:
        yield meta, accounts
    finally:
        await meta.close()
