"""``SqlMetadataStore``: the ``MetadataStore`` on SQLAlchemy Core.

For SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database, insert_ignore
from cargohold.metadata.store import (
    BlobIndex,
    GarbageIndex,
    ManifestIndex,
    ManifestRecord,
    Reference,
    RepositoryIndex,
    SizeMismatch,
    Tombstone,
    UploadIndex,
    UploadRecord,
)

# How many levels of index children and referrers a tag's reach follows.
_MAX_DEPTH = 8

_UPLOAD_COLUMNS = (
    t.uploads.c.id,
    t.uploads.c.repository,
    t.uploads.c.size,
    t.uploads.c.created_at,
    t.uploads.c.updated_at,
)
_UPLOAD = sa.select(*_UPLOAD_COLUMNS).where(t.uploads.c.id == sa.bindparam("id"))
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


def _ensure_repository(db: Database, conn: Connection, repository: str) -> None:
    conn.execute(
        insert_ignore(db, t.repositories, name=repository, created_at=time.time())
    )


def insert_new(db: Database, conn: Connection, table: sa.Table, **values: Any) -> bool:
    """INSERT unless the key exists; whether this statement inserted the row.

    (``rowcount`` cannot tell: psycopg reports -1 for ``ON CONFLICT DO NOTHING``.)
    """
    statement = cast("sa.Insert", insert_ignore(db, table, **values))
    key = next(iter(table.primary_key.columns))
    return conn.execute(statement.returning(key)).first() is not None


class BlobRow(NamedTuple):
    state: str  # "present" | "pending" | "deleting"
    size: int
    touched_at: float


def lock_blob(conn: Connection, digest: str) -> BlobRow | None:
    """The blob's (state, size, touched_at), its row locked until commit (PostgreSQL).

    Every writer that makes a blob live or dead locks its row first: on PostgreSQL a
    concurrent writer then waits, and its next statement sees what this one committed.
    On SQLite ``BEGIN IMMEDIATE`` already serialises writers (no ``FOR UPDATE`` there).
    """
    b = t.blobs
    query = sa.select(b.c.state, b.c.size, b.c.touched_at).where(b.c.digest == digest)
    row = conn.execute(query.with_for_update()).first()
    return None if row is None else BlobRow(str(row[0]), int(row[1]), float(row[2]))


def _touch_blob(conn: Connection, digest: str, now: float, **values: str) -> None:
    conn.execute(
        sa.update(t.blobs)
        .where(t.blobs.c.digest == digest)
        .values(touched_at=now, **values)
    )


def _link(db: Database, conn: Connection, repository: str, digest: str) -> None:
    """Link (or touch the link of) a blob whose row the caller holds ``present``."""
    now = time.time()
    _ensure_repository(db, conn, repository)
    rb = t.repository_blobs
    inserted = insert_new(
        db,
        conn,
        rb,
        repository=repository,
        digest=digest,
        created_at=now,
        touched_at=now,
    )
    if not inserted:
        conn.execute(
            sa.update(rb)
            .where(rb.c.repository == repository, rb.c.digest == digest)
            .values(touched_at=now)
        )


class SqlBlobIndex:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._linked = (
            sa.select(t.blobs.c.size)
            .join(t.repository_blobs, t.repository_blobs.c.digest == t.blobs.c.digest)
            .where(
                t.repository_blobs.c.repository == sa.bindparam("repository"),
                t.repository_blobs.c.digest == sa.bindparam("digest"),
            )
        )

    async def linked_size(self, repository: str, digest: str) -> int | None:
        row = await self._db.fetch_row(
            self._linked, {"repository": repository, "digest": digest}
        )
        return None if row is None else int(row[0])

    async def unlink(self, repository: str, digest: str) -> bool:
        query = sa.delete(t.repository_blobs).where(
            t.repository_blobs.c.repository == repository,
            t.repository_blobs.c.digest == digest,
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount > 0)

    async def link_existing(self, repository: str, digest: str) -> int | None:
        def run(conn: Connection) -> int | None:
            row = lock_blob(conn, digest)
            if row is None or row.state != "present":
                return None  # unknown, still being committed, or being deleted
            _touch_blob(conn, digest, time.time())
            _link(self._db, conn, repository, digest)
            return int(row.size)

        return await self._db.write(run)

    async def forget(self, digests: list[str], now: float) -> list[Tombstone]:
        b = t.blobs

        def run(conn: Connection) -> list[Tombstone]:
            conn.execute(
                sa.delete(t.repository_blobs).where(
                    t.repository_blobs.c.digest.in_(digests)
                )
            )
            conn.execute(
                sa.update(b)
                .where(b.c.digest.in_(digests))
                .values(state="deleting", touched_at=now)
            )
            rows = conn.execute(
                sa.select(b.c.digest, b.c.size).where(b.c.digest.in_(digests))
            )
            return [Tombstone(digest, size, now) for digest, size in rows]

        return await self._db.write(run)

    async def all_records(self) -> dict[str, int]:
        query = sa.select(t.blobs.c.digest, t.blobs.c.size).where(
            t.blobs.c.state == "present"
        )
        return await self._db.read(lambda conn: dict(conn.execute(query).all()))


class SqlUploadIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, upload_id: str, repository: str) -> None:
        now = time.time()
        query = sa.insert(t.uploads).values(
            id=upload_id, repository=repository, size=0, created_at=now, updated_at=now
        )
        await self._db.write(lambda conn: conn.execute(query))

    async def get(self, upload_id: str) -> UploadRecord | None:
        row = await self._db.fetch_row(_UPLOAD, {"id": upload_id})
        return UploadRecord(*row) if row else None

    async def set_size(self, upload_id: str, *, expected: int, size: int) -> bool:
        query = (
            sa.update(t.uploads)
            .where(t.uploads.c.id == upload_id, t.uploads.c.size == expected)
            .values(size=size, updated_at=time.time())
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount == 1)

    async def claim(self, upload_id: str, digest: str, size: int) -> Tombstone | None:
        def run(conn: Connection) -> Tombstone | None:
            now = time.time()
            conn.execute(
                insert_ignore(
                    self._db,
                    t.blobs,
                    digest=digest,
                    size=size,
                    created_at=now,
                    touched_at=now,
                    state="pending",
                )
            )
            row = lock_blob(conn, digest)
            if row is None:  # a tombstone dropped since the insert: claim afresh
                return Tombstone(digest, size, 0.0)
            if row.state == "deleting":
                return Tombstone(digest, int(row.size), float(row.touched_at))
            _touch_blob(conn, digest, now)
            conn.execute(
                sa.update(t.uploads)
                .where(t.uploads.c.id == upload_id)
                .values(claimed_digest=digest)
            )
            return None

        return await self._db.write(run)

    async def finish(
        self, upload_id: str, repository: str, digest: str, size: int
    ) -> bool:
        def run(conn: Connection) -> bool:
            row = lock_blob(conn, digest)
            if row is None:  # a session claimed before migration 0003
                conn.execute(
                    insert_ignore(
                        self._db,
                        t.blobs,
                        digest=digest,
                        size=size,
                        created_at=time.time(),
                        touched_at=time.time(),
                    )
                )
            elif row.state == "deleting":
                return False
            else:
                _touch_blob(conn, digest, time.time(), state="present")
            conn.execute(sa.delete(t.uploads).where(t.uploads.c.id == upload_id))
            _link(self._db, conn, repository, digest)
            return True

        return await self._db.write(run)

    async def delete(self, upload_id: str) -> None:
        query = sa.delete(t.uploads).where(t.uploads.c.id == upload_id)
        await self._db.write(lambda conn: conn.execute(query))

    async def older_than(self, timestamp: float) -> list[UploadRecord]:
        query = sa.select(*_UPLOAD_COLUMNS).where(t.uploads.c.updated_at < timestamp)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [UploadRecord(*row) for row in rows]


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
        self, record: ManifestRecord, *, tag: str | None, references: list[Reference]
    ) -> list[Reference | SizeMismatch]:
        def run(conn: Connection) -> list[Reference | SizeMismatch]:
            now = time.time()
            self._touch(conn, record, references, now)
            missing = self._missing(conn, record.repository, references)
            if missing:
                return missing
            _ensure_repository(self._db, conn, record.repository)
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
                self._set_tag(conn, record.repository, tag, record.digest, now)
            return []

        return await self._db.write(run)

    @staticmethod
    def _set_tag(
        conn: Connection, repository: str, tag: str, digest: str, now: float
    ) -> None:
        updated = conn.execute(
            sa.update(t.tags)
            .where(t.tags.c.repository == repository, t.tags.c.name == tag)
            .values(digest=digest, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                sa.insert(t.tags).values(
                    repository=repository, name=tag, digest=digest, updated_at=now
                )
            )

    async def delete(self, repository: str, digest: str) -> bool:
        def run(conn: Connection) -> bool:
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

    async def delete_tag(self, repository: str, tag: str) -> bool:
        query = sa.delete(t.tags).where(
            t.tags.c.repository == repository, t.tags.c.name == tag
        )
        return await self._db.write(lambda conn: conn.execute(query).rowcount > 0)

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
