"""``SqlAdvisoryStore``: the ``AdvisoryStore`` on SQLAlchemy Core (SQLite, PostgreSQL).

Also the two functions the manifest index calls inside a tag move's transaction:
``record_tag_move_in`` writes ``tag_history`` and re-resolves the tag globs of every
advisory not ``resolved`` (``retag_in``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.advisories import (
    AdvisoryRecord,
    AffectedDigest,
    AffectedIdentity,
    Coverage,
    Notice,
    PulledImage,
    RevisionRecord,
    TagMove,
    WarningRow,
    dumps,
)
from cargohold.metadata.database import Database
from cargohold.metadata.outbox import OutboxMessage, enqueue_in

RESOLVED = "resolved"
DRAFT = "draft"
_USER_PREFIX = "user:"
ANONYMOUS_PREFIX = "anonymous"

_ADVISORY_COLUMNS = (
    t.advisories.c.id,
    t.advisories.c.revision,
    t.advisories.c.title,
    t.advisories.c.severity,
    t.advisories.c.state,
    t.advisories.c.document,
    t.advisories.c.created_at,
    t.advisories.c.updated_at,
)


def _advisory(row: Sequence[Any]) -> AdvisoryRecord:
    ident, revision, title, severity, state, document, created, updated = row
    return AdvisoryRecord(
        ident, revision, title, severity, state, json.loads(document), created, updated
    )


def _insert_ignore(conn: Connection, table: sa.Table, *conflict: str) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        return postgresql.insert(table).on_conflict_do_nothing(
            index_elements=list(conflict)
        )
    from sqlalchemy.dialects import sqlite  # noqa: PLC0415

    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))


def _tag_targets(conn: Connection, repository: str) -> dict[str, str]:
    rows = conn.execute(
        sa.select(t.tags.c.name, t.tags.c.digest).where(
            t.tags.c.repository == repository
        )
    )
    return {str(name): str(digest) for name, digest in rows}


def _excluded(
    conn: Connection, coverage: Coverage, targets: Mapping[str, Mapping[str, str]]
) -> set[tuple[str, str]]:
    """(repository, digest) pairs ``fixed_in`` resolves to: never marked affected."""
    repositories = (
        [coverage.fixed_repository]
        if coverage.fixed_repository
        else sorted({r for r, _, _ in coverage.entries})
    )
    excluded: set[tuple[str, str]] = set()
    for repository in repositories:
        if coverage.fixed_digest:
            excluded.add((repository, coverage.fixed_digest))
        if coverage.fixed_tag:
            tags = targets.get(repository)
            if tags is None:
                tags = _tag_targets(conn, repository)
            digest = tags.get(coverage.fixed_tag)
            if digest:
                excluded.add((repository, digest))
    return excluded


def resolve_in(conn: Connection, advisory: str, coverage: Coverage, now: float) -> None:
    """Set an advisory's digests from its coverage, in the caller's transaction.

    Named digests, plus what each tag glob points at now; rows resolved earlier from a
    glob the document still has stay (that content was affected when it was tagged).
    What ``fixed_in`` resolves to is removed.
    """
    ad = t.advisory_digests
    repositories = sorted({r for r, _, _ in coverage.entries})
    targets = {r: _tag_targets(conn, r) for r in repositories}
    wanted: dict[tuple[str, str], str | None] = {}
    for repository, digests, _ in coverage.entries:
        for digest in digests:
            wanted[(repository, digest)] = None
        for tag, digest in sorted(targets[repository].items()):
            if coverage.matching_glob(repository, tag):
                wanted.setdefault((repository, digest), tag)
    existing = conn.execute(
        sa.select(ad.c.repository, ad.c.digest, ad.c.via_tag).where(
            ad.c.advisory == advisory
        )
    ).all()
    excluded = _excluded(conn, coverage, targets)
    stale = [
        (repository, digest)
        for repository, digest, via_tag in existing
        if (repository, digest) not in wanted
        and (via_tag is None or not coverage.matching_glob(repository, via_tag))
    ] + [(r, d) for r, d, _ in existing if (r, d) in excluded]
    for repository, digest in stale:
        conn.execute(
            sa.delete(ad).where(
                ad.c.advisory == advisory,
                ad.c.repository == repository,
                ad.c.digest == digest,
            )
        )
    rows = [
        {
            "advisory": advisory,
            "repository": repository,
            "digest": digest,
            "via_tag": via_tag,
            "added_at": now,
        }
        for (repository, digest), via_tag in wanted.items()
        if (repository, digest) not in excluded
    ]
    if rows:
        conn.execute(_insert_ignore(conn, ad, "advisory", "repository", "digest"), rows)


def retag_in(
    conn: Connection, repository: str, tag: str, digest: str | None, now: float
) -> None:
    """A tag of ``repository`` now points at ``digest``: follow it in every advisory
    not resolved whose globs match it (and drop it where it is now the fix)."""
    if digest is None:
        return  # a deleted tag: what it pointed at stays affected
    ad = t.advisory_digests
    # Documents are stored compactly with sorted keys (``dumps``), so an advisory
    # covering this repository holds this exact text: a cheap pre-filter.
    named = f'"repository":{json.dumps(repository)}'
    rows = conn.execute(
        sa.select(t.advisories.c.id, t.advisories.c.document).where(
            t.advisories.c.state != RESOLVED,
            t.advisories.c.document.contains(named, autoescape=True),
        )
    ).all()
    for advisory, document in rows:
        coverage = Coverage.of(json.loads(document))
        if not any(r == repository for r, _, _ in coverage.entries):
            continue
        targets = {repository: {**_tag_targets(conn, repository), tag: digest}}
        if (repository, digest) in _excluded(conn, coverage, targets):
            conn.execute(
                sa.delete(ad).where(
                    ad.c.advisory == advisory,
                    ad.c.repository == repository,
                    ad.c.digest == digest,
                )
            )
        elif coverage.matching_glob(repository, tag):
            conn.execute(
                _insert_ignore(conn, ad, "advisory", "repository", "digest"),
                [
                    {
                        "advisory": advisory,
                        "repository": repository,
                        "digest": digest,
                        "via_tag": tag,
                        "added_at": now,
                    }
                ],
            )


def record_tag_move_in(
    conn: Connection,
    repository: str,
    tag: str,
    *,
    from_digest: str | None,
    to_digest: str | None,
    actor: str,
    now: float,
) -> None:
    """Write the move to ``tag_history`` and let advisories follow it (same tx)."""
    if from_digest == to_digest:
        return
    conn.execute(
        sa.insert(t.tag_history).values(
            repository=repository,
            tag=tag,
            from_digest=from_digest,
            to_digest=to_digest,
            at=now,
            actor=actor,
        )
    )
    retag_in(conn, repository, tag, to_digest, now)


def _affected_query(advisory: str, since: float) -> sa.Select[Any]:
    ad, pd, u, o = t.advisory_digests, t.pull_daily, t.users, t.organizations
    is_user = pd.c.identity.like(_USER_PREFIX + "%")
    return (
        sa.select(
            pd.c.identity,
            pd.c.organization,
            pd.c.repository,
            pd.c.digest,
            sa.func.max(pd.c.last_at),
            u.c.email,
            o.c.security_contact,
        )
        .select_from(ad)
        .join(
            pd, sa.and_(pd.c.digest == ad.c.digest, pd.c.repository == ad.c.repository)
        )
        .outerjoin(
            u,
            sa.and_(
                is_user,
                u.c.name == sa.func.substr(pd.c.identity, len(_USER_PREFIX) + 1),
            ),
        )
        .outerjoin(o, o.c.name == pd.c.organization)
        .where(ad.c.advisory == advisory, pd.c.last_at >= since)
        .group_by(
            pd.c.identity,
            pd.c.organization,
            pd.c.repository,
            pd.c.digest,
            u.c.email,
            o.c.security_contact,
        )
        .order_by(pd.c.identity, pd.c.organization, pd.c.repository, pd.c.digest)
    )


def _identities(rows: Iterable[Sequence[Any]]) -> list[AffectedIdentity]:
    grouped: dict[tuple[str, str | None], tuple[str | None, list[PulledImage]]] = {}
    for identity, organization, repository, digest, last, email, contact in rows:
        key = (identity, organization)
        if key not in grouped:
            # An anonymous puller has no address; the organization's contact is for
            # the people behind its users, tokens and CI identities.
            anonymous = identity.startswith(ANONYMOUS_PREFIX)
            grouped[key] = (None if anonymous else (email or contact), [])
        grouped[key][1].append(PulledImage(repository, digest, float(last)))
    return [
        AffectedIdentity(identity, organization, contact, tuple(images))
        for (identity, organization), (contact, images) in grouped.items()
    ]


class SqlAdvisoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        document: Mapping[str, Any],
        *,
        actor: str,
        now: float,
        outbox: Sequence[OutboxMessage],
    ) -> AdvisoryRecord | None:
        ident = str(document["id"])

        def run(conn: Connection) -> AdvisoryRecord | None:
            # psycopg reports an INSERT's rowcount only when asked to keep it.
            query = (
                _insert_ignore(conn, t.advisories, "id")
                .values(
                    id=ident,
                    revision=1,
                    title=document["title"],
                    severity=document["severity"],
                    state=document["state"],
                    document=dumps(document),
                    created_at=now,
                    updated_at=now,
                )
                .execution_options(preserve_rowcount=True)
            )
            inserted = conn.execute(query).rowcount
            if inserted != 1:
                return None
            self._publish_in(conn, document, 1, actor, now, outbox)
            return AdvisoryRecord(
                ident,
                1,
                str(document["title"]),
                str(document["severity"]),
                str(document["state"]),
                dict(document),
                now,
                now,
            )

        return await self._db.write(run)

    @staticmethod
    def _publish_in(  # noqa: PLR0917 - one private step of create and update
        conn: Connection,
        document: Mapping[str, Any],
        revision: int,
        actor: str,
        now: float,
        outbox: Sequence[OutboxMessage],
    ) -> None:
        ident = str(document["id"])
        conn.execute(
            sa.insert(t.advisory_revisions).values(
                advisory=ident,
                revision=revision,
                at=now,
                actor=actor,
                document=dumps(document),
            )
        )
        resolve_in(conn, ident, Coverage.of(document), now)
        enqueue_in(conn, outbox, now=now)

    async def update(
        self,
        document: Mapping[str, Any],
        *,
        expected_revision: int,
        actor: str,
        now: float,
        outbox: Sequence[OutboxMessage],
    ) -> AdvisoryRecord | None:
        ident = str(document["id"])
        revision = expected_revision + 1

        def run(conn: Connection) -> AdvisoryRecord | None:
            a = t.advisories
            updated = conn.execute(
                sa.update(a)
                .where(a.c.id == ident, a.c.revision == expected_revision)
                .values(
                    revision=revision,
                    title=document["title"],
                    severity=document["severity"],
                    state=document["state"],
                    document=dumps(document),
                    updated_at=now,
                )
            ).rowcount
            if updated != 1:
                return None
            self._publish_in(conn, document, revision, actor, now, outbox)
            row = conn.execute(
                sa.select(*_ADVISORY_COLUMNS).where(a.c.id == ident)
            ).one()
            return _advisory(row)

        return await self._db.write(run)

    async def get(self, advisory: str) -> AdvisoryRecord | None:
        query = sa.select(*_ADVISORY_COLUMNS).where(t.advisories.c.id == advisory)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return _advisory(row) if row else None

    async def all(self) -> list[AdvisoryRecord]:
        query = sa.select(*_ADVISORY_COLUMNS).order_by(
            t.advisories.c.created_at.desc(), t.advisories.c.id
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_advisory(row) for row in rows]

    async def revisions(self, advisory: str) -> list[RevisionRecord]:
        r = t.advisory_revisions
        query = (
            sa.select(r.c.advisory, r.c.revision, r.c.at, r.c.actor, r.c.document)
            .where(r.c.advisory == advisory)
            .order_by(r.c.revision)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [
            RevisionRecord(a, n, at, who, json.loads(d)) for a, n, at, who, d in rows
        ]

    async def revision(self, advisory: str, revision: int) -> RevisionRecord | None:
        r = t.advisory_revisions
        query = sa.select(
            r.c.advisory, r.c.revision, r.c.at, r.c.actor, r.c.document
        ).where(r.c.advisory == advisory, r.c.revision == revision)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        a, n, at, who, d = row
        return RevisionRecord(a, n, at, who, json.loads(d))

    async def digests(self, advisory: str) -> list[AffectedDigest]:
        ad = t.advisory_digests
        query = (
            sa.select(ad.c.repository, ad.c.digest, ad.c.via_tag)
            .where(ad.c.advisory == advisory)
            .order_by(ad.c.repository, ad.c.digest)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [AffectedDigest(*row) for row in rows]

    async def affected(self, advisory: str, since: float) -> list[AffectedIdentity]:
        query = _affected_query(advisory, since)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return _identities(rows)

    async def deliver(
        self, notices: Sequence[Notice], outbox: Sequence[OutboxMessage], *, now: float
    ) -> int:
        n = t.notices
        keys = {(x.advisory, x.revision) for x in notices}

        def count(conn: Connection) -> int:
            total = 0
            for advisory, revision in keys:
                total += conn.execute(
                    sa.select(sa.func.count())
                    .select_from(n)
                    .where(n.c.advisory == advisory, n.c.revision == revision)
                ).scalar_one()
            return total

        def run(conn: Connection) -> int:
            before = count(conn)
            rows = [
                {
                    "identity": x.identity,
                    "advisory": x.advisory,
                    "revision": x.revision,
                    "document": dumps(x.document),
                    "created_at": now,
                    "read_at": None,
                }
                for x in notices
            ]
            if rows:
                conn.execute(
                    _insert_ignore(conn, n, "identity", "advisory", "revision"), rows
                )
            enqueue_in(conn, outbox, now=now)
            return count(conn) - before

        return await self._db.write(run)

    async def warnings(self) -> list[WarningRow]:
        ad, a = t.advisory_digests, t.advisories
        query = (
            sa.select(ad.c.repository, ad.c.digest, a.c.id, a.c.title, a.c.document)
            .join(a, a.c.id == ad.c.advisory)
            .where(a.c.state.not_in((RESOLVED, DRAFT)))
            .order_by(a.c.created_at, a.c.id)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        fixes: dict[str, str | None] = {}
        found: list[WarningRow] = []
        for repository, digest, advisory, title, document in rows:
            if advisory not in fixes:
                fixes[advisory] = json.loads(document).get("fixed_in")
            found.append(
                WarningRow(repository, digest, advisory, title, fixes[advisory])
            )
        return found

    async def marker(self) -> tuple[object, ...]:
        ad, a = t.advisory_digests, t.advisories
        query = sa.select(
            sa.select(sa.func.count()).select_from(ad).scalar_subquery(),
            sa.select(sa.func.max(ad.c.added_at)).scalar_subquery(),
            sa.select(sa.func.count()).select_from(a).scalar_subquery(),
            sa.select(sa.func.max(a.c.updated_at)).scalar_subquery(),
        )
        row = await self._db.read(lambda conn: conn.execute(query).one())
        return tuple(row)

    async def tag_history(
        self, repository: str, tag: str, *, limit: int
    ) -> list[TagMove]:
        h = t.tag_history
        query = (
            sa.select(
                h.c.repository,
                h.c.tag,
                h.c.from_digest,
                h.c.to_digest,
                h.c.at,
                h.c.actor,
            )
            .where(h.c.repository == repository, h.c.tag == tag)
            .order_by(h.c.at.desc(), h.c.id.desc())
            .limit(limit)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [TagMove(*row) for row in rows]
