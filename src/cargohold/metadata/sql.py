"""``SqlMetadataStore``: the ``MetadataStore`` on SQLAlchemy Core.

For SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database, insert_ignore
from cargohold.metadata.outbox import OutboxMessage, enqueue_in
from cargohold.metadata.sql_advisories import record_tag_move_in
from cargohold.metadata.sql_blobs import (
    SqlBlobIndex,
    SqlUploadIndex,
    ensure_repository,
)
from cargohold.metadata.store import (
    BlobIndex,
    GarbageIndex,
    ManifestIndex,
    ManifestRecord,
    Reference,
    RepositoryIndex,
    SizeMismatch,
    UploadIndex,
)

# Who moved a tag when no caller is named (GC, maintenance, tests).
SYSTEM = "system"
# How many levels of index children and referrers a tag's reach follows.
_MAX_DEPTH = 8

_REPOSITORY = sa.select(t.repositories.c.name).where(
    t.repositories.c.name == sa.bindparam("name")
)
_TAGS_AFTER = (
    sa.select(t.tags.c.name)
    .where(
        t.tags.c.repository == sa.bindparam("repository"),
        t.tags.c.name > sa.bindparam("last"),
    )
    .order_by(t.tags.c.name)
)
_TAGS_PAGE = _TAGS_AFTER.limit(sa.bindparam("limit", type_=sa.Integer))

_MANIFEST_COLUMNS = (
    t.manifests.c.repository,
    t.manifests.c.digest,
    t.manifests.c.media_type,
    t.manifests.c.content,
    t.manifests.c.artifact_type,
    t.manifests.c.subject,
    t.manifests.c.annotations,
)


class SqlManifestIndex:
    def __init__(self, db: Database) -> None:
        self._db = db
        m = t.manifests
        self._by_tag = (
            sa.select(*_MANIFEST_COLUMNS)
            .join(
                t.tags,
                sa.and_(
                    t.tags.c.repository == m.c.repository, t.tags.c.digest == m.c.digest
                ),
            )
            .where(
                t.tags.c.repository == sa.bindparam("repository"),
                t.tags.c.name == sa.bindparam("tag"),
            )
        )
        self._by_digest = sa.select(*_MANIFEST_COLUMNS).where(
            m.c.repository == sa.bindparam("repository"),
            m.c.digest == sa.bindparam("digest"),
        )

    async def by_tag(self, repository: str, tag: str) -> ManifestRecord | None:
        row = await self._db.fetch_row(
            self._by_tag, {"repository": repository, "tag": tag}
        )
        return ManifestRecord(*row) if row else None

    async def by_digest(self, repository: str, digest: str) -> ManifestRecord | None:
        row = await self._db.fetch_row(
            self._by_digest, {"repository": repository, "digest": digest}
        )
        return ManifestRecord(*row) if row else None

    def _missing(
        self, conn: Connection, repository: str, references: list[Reference]
    ) -> list[Reference | SizeMismatch]:
        blob_digests = [r.digest for r in references if r.kind == "blob"]
        manifest_digests = [r.digest for r in references if r.kind == "manifest"]
        sizes: dict[tuple[str, str], int] = {}
        if blob_digests:
            query = (
                sa.select(t.blobs.c.digest, t.blobs.c.size)
                .join(
                    t.repository_blobs,
                    t.repository_blobs.c.digest == t.blobs.c.digest,
                )
                .where(
                    t.repository_blobs.c.repository == repository,
                    t.repository_blobs.c.digest.in_(blob_digests),
                )
            )
            sizes |= {(d, "blob"): int(n) for d, n in conn.execute(query)}
        if manifest_digests:
            query = sa.select(
                t.manifests.c.digest, sa.func.length(t.manifests.c.content)
            ).where(
                t.manifests.c.repository == repository,
                t.manifests.c.digest.in_(manifest_digests),
            )
            sizes |= {(d, "manifest"): int(n) for d, n in conn.execute(query)}
        unmet: list[Reference | SizeMismatch] = []
        for ref in references:
            stored = sizes.get((ref.digest, ref.kind))
            if stored is None:
                unmet.append(ref)
            elif ref.size is not None and ref.size != stored:
                unmet.append(SizeMismatch(ref, stored))
        return unmet

    @staticmethod
    def _touch(
        conn: Connection,
        record: ManifestRecord,
        references: list[Reference],
        now: float,
    ) -> None:
        """Lock and touch the rows this PUT depends on (GC fence), in digest order.

        The blob links and child manifests it references, and the manifest itself if
        stored (a re-tag): GC locks the same rows before it decides, so either it sees
        this PUT or this PUT sees the rows gone (``MANIFEST_BLOB_UNKNOWN``).
        """
        rb, m = t.repository_blobs, t.manifests
        blobs = sorted({r.digest for r in references if r.kind == "blob"})
        manifests = sorted(
            {r.digest for r in references if r.kind == "manifest"} | {record.digest}
        )
        for table, digests in ((rb, blobs), (m, manifests)):
            if not digests:
                continue
            where = (
                table.c.repository == record.repository,
                table.c.digest.in_(digests),
            )
            conn.execute(
                sa.select(table.c.digest)
                .where(*where)
                .order_by(table.c.digest)
                .with_for_update()
            ).all()
            conn.execute(sa.update(table).where(*where).values(touched_at=now))

    async def put(
        self,
        record: ManifestRecord,
        *,
        tag: str | None,
        references: list[Reference],
        actor: str = SYSTEM,
        jobs: Sequence[OutboxMessage] = (),
    ) -> list[Reference | SizeMismatch]:
        def run(conn: Connection) -> list[Reference | SizeMismatch]:
            now = time.time()
            self._touch(conn, record, references, now)
            missing = self._missing(conn, record.repository, references)
            if missing:
                return missing
            ensure_repository(self._db, conn, record.repository)
            conn.execute(
                insert_ignore(
                    self._db,
                    t.manifests,
                    repository=record.repository,
                    digest=record.digest,
                    media_type=record.media_type,
                    content=record.content,
                    artifact_type=record.artifact_type,
                    subject=record.subject,
                    annotations=record.annotations,
                    created_at=now,
                    touched_at=now,
                )
            )
            for ref in references:
                conn.execute(
                    insert_ignore(
                        self._db,
                        t.manifest_references,
                        repository=record.repository,
                        manifest=record.digest,
                        target=ref.digest,
                        kind=ref.kind,
                    )
                )
            if tag is not None:
                self._set_tag(conn, record.repository, tag, record.digest, now, actor)
            enqueue_in(conn, jobs, now=now)
            return []

        return await self._db.write(run)

    @staticmethod
    def _set_tag(  # noqa: PLR0917 - private, called once
        conn: Connection, repository: str, tag: str, digest: str, now: float, actor: str
    ) -> None:
        where = (t.tags.c.repository == repository, t.tags.c.name == tag)
        previous = conn.execute(
            sa.select(t.tags.c.digest).where(*where).with_for_update()
        ).scalar()
        if previous is not None:
            conn.execute(
                sa.update(t.tags).where(*where).values(digest=digest, updated_at=now)
            )
        else:
            conn.execute(
                sa.insert(t.tags).values(
                    repository=repository, name=tag, digest=digest, updated_at=now
                )
            )
        record_tag_move_in(
            conn,
            repository,
            tag,
            from_digest=previous,
            to_digest=digest,
            actor=actor,
            now=now,
        )

    async def delete(
        self, repository: str, digest: str, *, actor: str = SYSTEM
    ) -> bool:
        def run(conn: Connection) -> bool:
            now = time.time()
            removed = conn.execute(
                sa.select(t.tags.c.name)
                .where(t.tags.c.repository == repository, t.tags.c.digest == digest)
                .order_by(t.tags.c.name)
            ).scalars()
            for tag in list(removed):
                record_tag_move_in(
                    conn,
                    repository,
                    tag,
                    from_digest=digest,
                    to_digest=None,
                    actor=actor,
                    now=now,
                )
            deleted = conn.execute(
                sa.delete(t.manifests).where(
                    t.manifests.c.repository == repository,
                    t.manifests.c.digest == digest,
                )
            ).rowcount
            conn.execute(
                sa.delete(t.tags).where(
                    t.tags.c.repository == repository, t.tags.c.digest == digest
                )
            )
            conn.execute(
                sa.delete(t.manifest_references).where(
                    t.manifest_references.c.repository == repository,
                    t.manifest_references.c.manifest == digest,
                )
            )
            return deleted > 0

        return await self._db.write(run)

    async def delete_tag(
        self, repository: str, tag: str, *, actor: str = SYSTEM
    ) -> bool:
        where = (t.tags.c.repository == repository, t.tags.c.name == tag)

        def run(conn: Connection) -> bool:
            previous = conn.execute(
                sa.select(t.tags.c.digest).where(*where).with_for_update()
            ).scalar()
            if previous is None:
                return False
            conn.execute(sa.delete(t.tags).where(*where))
            record_tag_move_in(
                conn,
                repository,
                tag,
                from_digest=previous,
                to_digest=None,
                actor=actor,
                now=time.time(),
            )
            return True

        return await self._db.write(run)

    async def tags(
        self, repository: str, *, last: str | None, limit: int | None
    ) -> list[str]:
        # Every tag sorts after "", so one statement serves both with and without last.
        params = {"repository": repository, "last": last or ""}
        if limit is None:
            rows = await self._db.fetch_all(_TAGS_AFTER, params)
        else:
            rows = await self._db.fetch_all(_TAGS_PAGE, params | {"limit": limit})
        return [row[0] for row in rows]

    async def referrers(self, repository: str, subject: str) -> list[ManifestRecord]:
        query = (
            sa.select(*_MANIFEST_COLUMNS)
            .where(
                t.manifests.c.repository == repository, t.manifests.c.subject == subject
            )
            .order_by(t.manifests.c.created_at, t.manifests.c.digest)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [ManifestRecord(*row) for row in rows]

    async def dangling(self) -> list[tuple[str, str, str]]:
        r = t.manifest_references
        linked = sa.exists().where(
            t.repository_blobs.c.repository == r.c.repository,
            t.repository_blobs.c.digest == r.c.target,
        )
        stored = sa.exists().where(
            t.manifests.c.repository == r.c.repository,
            t.manifests.c.digest == r.c.target,
        )
        query = sa.select(r.c.repository, r.c.manifest, r.c.target).where(
            sa.or_(
                sa.and_(r.c.kind == "blob", ~linked),
                sa.and_(r.c.kind == "manifest", ~stored),
            )
        )
        return await self._db.read(
            lambda conn: [tuple(row) for row in conn.execute(query)]
        )

    async def reachable(
        self, repository: str, tag_allowed: Callable[[str], bool]
    ) -> tuple[frozenset[str], frozenset[str]]:
        return await self._db.read(
            lambda conn: reach(conn, repository, tag_allowed, _MAX_DEPTH)
        )


def reach(
    conn: Connection,
    repository: str,
    tag_allowed: Callable[[str], bool],
    max_depth: int | None,
) -> tuple[frozenset[str], frozenset[str]]:
    """Manifests and blobs reached from the tags ``tag_allowed`` accepts.

    Follows index children and referrers ``max_depth`` levels (``None``: all of them,
    as GC must: content deeper than a bound is still in use).
    """
    r, m = t.manifest_references, t.manifests
    tags = conn.execute(
        sa.select(t.tags.c.name, t.tags.c.digest).where(
            t.tags.c.repository == repository
        )
    )
    frontier = {digest for name, digest in tags if tag_allowed(name)}
    manifests = set(frontier)
    depth = 0
    while frontier and (max_depth is None or depth < max_depth):
        depth += 1
        children = conn.execute(
            sa.select(r.c.target).where(
                r.c.repository == repository,
                r.c.kind == "manifest",
                r.c.manifest.in_(frontier),
            )
        ).scalars()
        referrers = conn.execute(
            sa.select(m.c.digest).where(
                m.c.repository == repository, m.c.subject.in_(frontier)
            )
        ).scalars()
        frontier = (set(children) | set(referrers)) - manifests
        manifests |= frontier
    blobs: set[str] = set()
    if manifests:
        blobs.update(
            conn.execute(
                sa.select(r.c.target).where(
                    r.c.repository == repository,
                    r.c.kind == "blob",
                    r.c.manifest.in_(manifests),
                )
            ).scalars()
        )
    return frozenset(manifests), frozenset(blobs)


class SqlRepositoryIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def exists(self, repository: str) -> bool:
        return await self._db.fetch_row(_REPOSITORY, {"name": repository}) is not None

    async def names(self, *, last: str | None, limit: int | None) -> list[str]:
        query = sa.select(t.repositories.c.name).order_by(t.repositories.c.name)
        if last is not None:
            query = query.where(t.repositories.c.name > last)
        if limit is not None:
            query = query.limit(limit)
        return await self._db.read(lambda conn: list(conn.execute(query).scalars()))


class SqlMetadataStore:
    """The metadata store over one ``Database``."""

    def __init__(self, db: Database) -> None:
        # sql_gc builds on this module's row locking and reach.
        from cargohold.metadata.sql_gc import SqlGarbageIndex  # noqa: PLC0415

        self.db = db
        self.blobs: BlobIndex = SqlBlobIndex(db)
        self.uploads: UploadIndex = SqlUploadIndex(db)
        self.manifests: ManifestIndex = SqlManifestIndex(db)
        self.repositories: RepositoryIndex = SqlRepositoryIndex(db)
        self.garbage: GarbageIndex = SqlGarbageIndex(db)

    async def close(self) -> None:
        await self.db.close()
