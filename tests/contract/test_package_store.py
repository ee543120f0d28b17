"""The ``PackageStore`` contract (``cargohold.metadata.packages``), over every
database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.outbox import MATCH, OutboxMessage
from cargohold.metadata.packages import (
    DONE,
    FAILED,
    Description,
    PackageRecord,
    PackageStore,
)
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.metadata.sql_packages import SqlPackageStore
from cargohold.metadata.store import ManifestRecord

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "c" * 64
OTHER = "sha256:" + "d" * 64
NOW = 1_780_000_000.0


@pytest.fixture
def packages(db: Database) -> PackageStore:
    # The typed assignment is the conformance check (mypy runs on tests/).
    store: PackageStore = SqlPackageStore(db)
    return store


def row(name: str, version: str = "1.0", ecosystem: str = "PyPI") -> PackageRecord:
    return PackageRecord(
        ecosystem, name, version, f"pkg:pypi/{name}@{version}", f"site/{name}", "MIT"
    )


def described(state: str = DONE, at: float = NOW) -> Description:
    return Description(DIGEST, "acme/app", state, at, {"labels": {"a": "b"}}, None)


def outbox_keys(db: Database) -> list[str]:
    query = sa.select(t.outbox.c.key).order_by(t.outbox.c.key)
    return list(db.run_sync(lambda conn: conn.execute(query).scalars().all()))


async def test_nothing_is_described_at_first(packages: PackageStore) -> None:
    assert await packages.description(DIGEST) is None
    assert await packages.packages(DIGEST) == []


async def test_record_stores_description_packages_and_jobs_together(
    packages: PackageStore, db: Database
) -> None:
    job = OutboxMessage(f"match:{DIGEST}:{NOW!r}", MATCH, {"digest": DIGEST})
    rows = [row("zeta"), row("alpha", "2.0"), row("alpha", "1.0", "npm")]
    await packages.record(described(), rows, jobs=[job])
    stored = await packages.description(DIGEST)
    assert stored == Description(
        DIGEST, "acme/app", DONE, NOW, {"labels": {"a": "b"}}, None, package_count=3
    )
    assert await packages.packages(DIGEST) == [
        row("alpha", "2.0"),
        row("zeta"),
        row("alpha", "1.0", "npm"),  # "PyPI" < "npm" in code points
    ]
    assert await packages.packages(OTHER) == []
    assert outbox_keys(db) == [job.key]


async def test_recording_again_replaces_not_adds(
    packages: PackageStore, db: Database
) -> None:
    job = OutboxMessage("match:x", MATCH, {"digest": DIGEST})
    await packages.record(described(), [row("a"), row("b")], jobs=[job])
    await packages.record(described(), [row("a"), row("b")], jobs=[job])
    assert [p.name for p in await packages.packages(DIGEST)] == ["a", "b"]
    assert outbox_keys(db) == ["match:x"]
    await packages.record(
        Description(DIGEST, "acme/app", FAILED, NOW + 1, {}, "bad layer"), []
    )
    failed = await packages.description(DIGEST)
    assert failed is not None
    assert (failed.state, failed.error, failed.package_count) == (
        FAILED,
        "bad layer",
        0,
    )
    assert await packages.packages(DIGEST) == []


async def test_many_packages_in_one_record(packages: PackageStore) -> None:
    rows = [row(f"p{i:05d}") for i in range(4500)]
    await packages.record(described(), rows)
    assert await packages.packages(DIGEST) == rows


async def test_repositories_with_a_digest(packages: PackageStore, db: Database) -> None:
    assert await packages.repositories_with(DIGEST) == []
    meta = SqlMetadataStore(db)
    for repository in ("zed/app", "acme/app"):
        await meta.manifests.put(
            ManifestRecord(
                repository,
                DIGEST,
                "application/vnd.oci.image.manifest.v1+json",
                b"{}",
            ),
            tag=None,
            references=[],
        )
    assert await packages.repositories_with(DIGEST) == ["acme/app", "zed/app"]
