"""``SqlPackageStore``: the ``PackageStore`` on SQLAlchemy Core (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.outbox import enqueue_in
from cargohold.metadata.packages import Description, PackageRecord

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from cargohold.metadata.database import Database
    from cargohold.metadata.outbox import OutboxMessage

_D = t.image_descriptions.c
_P = t.image_packages.c
# Rows per INSERT: 6 parameters each, well under SQLite's 32,766 a statement.
_CHUNK = 2000


class SqlPackageStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def description(self, digest: str) -> Description | None:
        query = sa.select(t.image_descriptions).where(_D.digest == digest)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        return Description(
            digest=row.digest,
            repository=row.repository,
            state=row.state,
            described_at=row.described_at,
            facts=json.loads(row.facts) if row.facts else {},
            error=row.error,
            package_count=row.package_count,
        )

    async def packages(self, digest: str) -> list[PackageRecord]:
        query = sa.select(
            _P.ecosystem, _P.name, _P.version, _P.purl, _P.path, _P.license
        ).where(_P.digest == digest)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        # Sorted here: the databases' collations order text differently.
        return sorted(
            (PackageRecord(*row) for row in rows),
            key=lambda p: (p.ecosystem, p.name, p.version, p.path),
        )

    async def record(
        self,
        description: Description,
        packages: Sequence[PackageRecord],
        *,
        jobs: Sequence[OutboxMessage] = (),
    ) -> None:
        def write(conn: Connection) -> None:
            digest = description.digest
            conn.execute(sa.delete(t.image_packages).where(_P.digest == digest))
            conn.execute(sa.delete(t.image_descriptions).where(_D.digest == digest))
            conn.execute(
                sa.insert(t.image_descriptions).values(
                    digest=digest,
                    repository=description.repository,
                    state=description.state,
                    package_count=len(packages),
                    facts=json.dumps(dict(description.facts), sort_keys=True),
                    error=description.error,
                    described_at=description.described_at,
                )
            )
            rows = [
                {
                    "digest": digest,
                    "ecosystem": p.ecosystem,
                    "name": p.name,
                    "version": p.version,
                    "purl": p.purl,
                    "license": p.license,
                    "path": p.path,
                }
                for p in packages
            ]
            for start in range(0, len(rows), _CHUNK):
                conn.execute(sa.insert(t.image_packages), rows[start : start + _CHUNK])
            enqueue_in(conn, jobs, now=description.described_at)

        await self._db.write(write)

    async def repositories_with(self, digest: str) -> list[str]:
        m = t.manifests.c
        query = (sa.select(m.repository).where(m.digest == digest).distinct()).order_by(
            m.repository
        )
        rows = await self._db.read(lambda conn: conn.execute(query).scalars().all())
        return list(rows)
