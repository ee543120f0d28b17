"""``SqlVulnerabilityStore``: the ``VulnerabilityStore`` on SQLAlchemy Core."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.outbox import MATCH, OutboxMessage, enqueue_in
from cargohold.metadata.vulns import (
    Description,
    FeedRecord,
    ImagePackage,
    ImportCounts,
    Match,
    MatchDetail,
    StoredVulnerability,
)

_V = t.vulnerabilities.c
_P = t.vulnerability_packages.c
_M = t.image_vulnerabilities.c
# Worst first; anything else ("unknown") last.
_ORDER = sa.case(
    {"critical": 0, "high": 1, "medium": 2, "low": 3}, value=_M.severity, else_=4
)
# Keys per IN list: well under SQLite's and PostgreSQL's parameter limits.
_CHUNK = 400
_VULN_COLUMNS = (_V.id, _V.modified, _V.severity, _V.summary, _V.aliases, _V.document)


def _stored(row: Sequence[Any]) -> StoredVulnerability:
    ident, modified, severity, summary, aliases, document = row
    return StoredVulnerability(
        ident,
        modified,
        severity,
        summary,
        tuple(json.loads(aliases)),
        json.loads(document),
    )


def _write_record(
    conn: Connection, record: FeedRecord, now: float, *, new: bool
) -> None:
    values = {
        "modified": record.modified,
        "severity": record.severity,
        "summary": record.summary,
        "aliases": json.dumps(list(record.aliases)),
        "document": json.dumps(record.document, separators=(",", ":")),
        "imported_at": now,
    }
    if new:
        conn.execute(sa.insert(t.vulnerabilities).values(id=record.id, **values))
    else:
        conn.execute(
            sa.update(t.vulnerabilities).where(_V.id == record.id).values(**values)
        )
        conn.execute(
            sa.delete(t.vulnerability_packages).where(_P.vulnerability == record.id)
        )
    if record.packages:
        conn.execute(
            sa.insert(t.vulnerability_packages),
            [
                {"vulnerability": record.id, "ecosystem": e, "name": n}
                for e, n in record.packages
            ],
        )


class SqlVulnerabilityStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert(
        self, records: Sequence[FeedRecord], *, now: float
    ) -> ImportCounts:
        # One id twice in a batch: the newest wins, as across batches.
        newest: dict[str, FeedRecord] = {}
        for record in records:
            held = newest.get(record.id)
            if held is None or record.modified > held.modified:
                newest[record.id] = record

        def run(conn: Connection) -> ImportCounts:
            stored: dict[str, float] = {}
            ids = sorted(newest)
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                query = sa.select(_V.id, _V.modified).where(_V.id.in_(chunk))
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update()
                stored.update({r[0]: r[1] for r in conn.execute(query)})
            added = updated = unchanged = 0
            for ident in ids:
                record = newest[ident]
                if ident not in stored:
                    _write_record(conn, record, now, new=True)
                    added += 1
                elif record.modified > stored[ident]:
                    _write_record(conn, record, now, new=False)
                    updated += 1
                else:
                    unchanged += 1
            return ImportCounts(added, updated, unchanged + len(records) - len(ids))

        return await self._db.write(run)

    async def get(self, vulnerability: str) -> StoredVulnerability | None:
        query = sa.select(*_VULN_COLUMNS).where(_V.id == vulnerability)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return _stored(row) if row is not None else None

    async def candidates(
        self, keys: Collection[tuple[str, str]]
    ) -> list[StoredVulnerability]:
        by_ecosystem: dict[str, list[str]] = {}
        for ecosystem, name in sorted(set(keys)):
            by_ecosystem.setdefault(ecosystem, []).append(name)

        def run(conn: Connection) -> list[StoredVulnerability]:
            found: dict[str, StoredVulnerability] = {}
            for ecosystem, names in by_ecosystem.items():
                for start in range(0, len(names), _CHUNK):
                    ids = (
                        sa.select(_P.vulnerability)
                        .where(_P.ecosystem == ecosystem)
                        .where(_P.name.in_(names[start : start + _CHUNK]))
                    )
                    query = sa.select(*_VULN_COLUMNS).where(_V.id.in_(ids))
                    for row in conn.execute(query):
                        found.setdefault(row[0], _stored(row))
            return [found[k] for k in sorted(found)]

        return await self._db.read(run)

    async def description(self, digest: str) -> Description | None:
        d = t.image_descriptions.c
        query = sa.select(d.digest, d.state, d.described_at).where(d.digest == digest)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return Description(row[0], row[1], row[2]) if row is not None else None

    async def packages(self, digest: str) -> list[ImagePackage]:
        p = t.image_packages.c
        query = (
            sa.select(p.ecosystem, p.name, p.version, p.purl, p.path)
            .where(p.digest == digest)
            .order_by(p.id)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [ImagePackage(*row) for row in rows]

    async def matches(self, digest: str) -> list[MatchDetail]:
        query = (
            sa.select(
                _M.vulnerability,
                _M.ecosystem,
                _M.package,
                _M.version,
                _M.fixed,
                _M.severity,
                _V.summary,
                _V.aliases,
                _M.matched_at,
            )
            .join(t.vulnerabilities, _V.id == _M.vulnerability, isouter=True)
            .where(_M.digest == digest)
            .order_by(_ORDER, _M.vulnerability, _M.ecosystem, _M.package, _M.version)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [
            MatchDetail(
                Match(*row[:6]),
                row[6],
                tuple(json.loads(row[7])) if row[7] else (),
                row[8],
            )
            for row in rows
        ]

    async def replace_matches(
        self, digest: str, matches: Sequence[Match], *, now: float
    ) -> None:
        def key(m: Match) -> tuple[str, str, str, str]:
            return (m.vulnerability, m.ecosystem, m.package, m.version)

        wanted = {key(m): m for m in matches}

        def run(conn: Connection) -> None:
            query = sa.select(
                _M.vulnerability, _M.ecosystem, _M.package, _M.version, _M.matched_at
            ).where(_M.digest == digest)
            since = {tuple(r[:4]): r[4] for r in conn.execute(query)}
            conn.execute(sa.delete(t.image_vulnerabilities).where(_M.digest == digest))
            if wanted:
                conn.execute(
                    sa.insert(t.image_vulnerabilities),
                    [
                        {
                            "digest": digest,
                            "vulnerability": m.vulnerability,
                            "ecosystem": m.ecosystem,
                            "package": m.package,
                            "version": m.version,
                            "fixed": m.fixed,
                            "severity": m.severity,
                            "matched_at": since.get(k, now),
                        }
                        for k, m in sorted(wanted.items())
                    ],
                )

        await self._db.write(run)

    async def counts(self, digest: str) -> dict[str, int]:
        query = (
            sa.select(_M.severity, sa.func.count(sa.distinct(_M.vulnerability)))
            .where(_M.digest == digest)
            .group_by(_M.severity)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return {row[0]: int(row[1]) for row in rows}

    async def pulled_in(self, digest: str, since: float) -> list[str]:
        d = t.pull_daily.c
        query = (
            sa.select(d.repository)
            .where(d.digest == digest, d.last_at >= since)
            .group_by(d.repository)
            .order_by(d.repository)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [row[0] for row in rows]

    async def enqueue_described(
        self, after: str, limit: int, tag: str, *, now: float
    ) -> list[str]:
        d = t.image_descriptions.c
        query = (
            sa.select(d.digest)
            .where(d.state == "done", d.digest > after)
            .order_by(d.digest)
            .limit(limit)
        )

        def run(conn: Connection) -> list[str]:
            digests = [row[0] for row in conn.execute(query)]
            enqueue_in(
                conn,
                [
                    OutboxMessage(f"match:{digest}:{tag}", MATCH, {"digest": digest})
                    for digest in digests
                ],
                now=now,
            )
            return digests

        return await self._db.write(run)
