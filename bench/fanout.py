"""Advisory fan-out to N identities (default 10,000): how long ``fan_out`` takes.

Seeds a fresh database (SQLite in a temporary directory, or ``--database URL``, which is
EMPTIED first: use a throwaway PostgreSQL) with one tagged manifest and N identities'
``pull_daily`` rows, publishes an advisory on it, then times the ``affected`` query and
``AdvisoryService.fan_out`` (notices, one email per contact address, events), and a
second, idempotent run. Bounded: one pass, no loops beyond N rows.

    .venv/bin/python bench/fanout.py [--identities 10000] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cargohold.auth.policy import Principal
from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.metadata.sql_accounts import SqlAccountStore
from cargohold.metadata.sql_advisories import SqlAdvisoryStore
from cargohold.metadata.store import ManifestRecord
from cargohold.oci.digest import Digest
from cargohold.registry.access import AccessService
from cargohold.registry.advisories import DAY, AdvisoryService
from cargohold.settings import AdvisorySettings, AuthSettings

REPO = "acme/app"
ADMIN = Principal("user", "user:root", is_admin=True)


@dataclass(frozen=True)
class Item:
    payload: dict[str, Any]


def reset_schema(db: Database) -> None:
    """Empty a throwaway PostgreSQL database (the bench migrates it afresh)."""

    def drop(conn: sa.Connection) -> None:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))

    db.run_sync(drop)


async def main(identities: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        if not db.is_sqlite:
            reset_schema(db)
        upgrade(db)
        meta, accounts = SqlMetadataStore(db), SqlAccountStore(db)
        advisories = SqlAdvisoryStore(db)
        content = b"bench manifest"
        digest = str(Digest.of(content))
        record = ManifestRecord(REPO, digest, "application/json", content)
        await meta.manifests.put(record, tag="1.0", references=[])
        await accounts.organizations.create("acme")
        await accounts.organizations.set_contact("acme", "sec@acme.test")
        now = time.time()
        rows = [
            {
                "day": int(now // DAY),
                "identity": f"user:u{i}" if i % 2 else f"token:t{i}",
                "repository": REPO,
                "digest": digest,
                "kind": "user" if i % 2 else "token",
                "organization": "acme",
                "count": 1,
                "last_at": now - i,
            }
            for i in range(identities)
        ]
        db.run_sync(lambda conn: conn.execute(sa.insert(t.pull_daily), rows))
        service = AdvisoryService(
            advisories, AccessService(accounts, AuthSettings()), AdvisorySettings()
        )
        await service.publish(
            ADMIN,
            {
                "id": "BENCH-1",
                "title": "bench",
                "severity": "high",
                "state": "current",
                "affected": [{"repository": REPO, "tags": ["1.*"]}],
            },
        )
        started = time.perf_counter()
        found = await advisories.affected("BENCH-1", now - 90 * DAY)
        query = time.perf_counter() - started
        started = time.perf_counter()
        await service.fan_out(Item({"advisory": "BENCH-1", "revision": 1}))
        first = time.perf_counter() - started
        started = time.perf_counter()
        await service.fan_out(Item({"advisory": "BENCH-1", "revision": 1}))
        again = time.perf_counter() - started
        notices = db.run_sync(
            lambda conn: conn.execute(
                sa.select(sa.func.count()).select_from(t.notices)
            ).scalar_one()
        )
        print(
            f"{db.dialect}: {len(found)} affected identities; affected query "
            f"{query:.2f} s; fan-out {first:.2f} s ({notices} notices); "
            f"again (idempotent) {again:.2f} s"
        )
        await meta.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=10_000)
    parser.add_argument("--database", help="a THROWAWAY database URL (emptied)")
    args = parser.parse_args()
    asyncio.run(main(args.identities, args.database))
