"""``SqlMetadataStore``: the ``MetadataStore`` on SQLAlchemy Core.

For SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database, insert_ignore
from cargohold.metadata.store import (
    BlobIndex,
    ManifestIndex,
    ManifestRecord,
    Reference,
    RepositoryIndex,
    SizeMismatch,
    UploadIndex,
    UploadRecord,
)

# How many levels of index children and referrers a tag's reach follows.
_MAX_DEPTH = 8

_UPLOAD = sa.select(t.uploads).where(t.uploads.c.id == sa.bindparam("id"))
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


def _link(
    db: Database, conn: Connection, repository: str, digest: str, size: int
) -> None:
    now = time.time()
    _ensure_repository(db, conn, repository)
    conn.execute(insert_ignore(db, t.blobs, digest=digest, size=size, created_at=now))
    conn.execute(
        insert_ignore(
            db, t.repository_blobs, repository=repository, digest=digest, created_at=now
        )
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
            size = conn.execute(
                sa.select(t.blobs.c.size).where(t.blobs.c.digest == digest)
            ).scalar()
            if size is not None:
                _link(self._db, conn, repository, digest, size)
            return size

        return await self._db.write(run)

    async def forget_unreferenced(self, digests: list[str]) -> list[str]:
        def run(conn: Connection) -> list[str]:
            linked = sa.select(t.repository_blobs.c.digest).where(
                t.repository_blobs.c.digest.in_(digests)
            )
            referenced = sa.select(t.manifest_references.c.target).where(
                t.manifest_references.c.target.in_(digests)
            )
            used = set(conn.execute(linked).scalars())
            used |= set(conn.execute(referenced).scalars())
            unused = [d for d in digests if d not in used]
            if unused:
                conn.execute(sa.delete(t.blobs).where(t.blobs.c.digest.in_(unused)))
            return unused

        return await self._db.write(run)

    async def forget(self, digests: list[str]) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                sa.delete(t.repository_blobs).where(
                    t.repository_blobs.c.digest.in_(digests)
                )
            )
            conn.execute(sa.delete(t.blobs).where(t.blobs.c.digest.in_(digests)))

        await self._db.write(run)

    async def all_records(self) -> dict[str, int]:
        query = sa.select(t.blobs.c.digest, t.blobs.c.size)
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

    async def finish(
        self, upload_id: str, repository: str, digest: str, size: int
    ) -> None:
        def run(conn: Connection) -> None:
            conn.execute(sa.delete(t.uploads).where(t.uploads.c.id == upload_id))
            _link(self._db, conn, repository, digest, size)

        await self._db.write(run)

    async def delete(self, upload_id: str) -> None:
        query = sa.delete(t.uploads).where(t.uploads.c.id == upload_id)
        await self._db.write(lambda conn: conn.execute(query))

    async def older_than(self, timestamp: float) -> list[UploadRecord]:
        query = sa.select(t.uploads).where(t.uploads.c.updated_at < timestamp)
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

    async def put(
        self, record: ManifestRecord, *, tag: str | None, references: list[Reference]
    ) -> list[Reference | SizeMismatch]:
        def run(conn: Connection) -> list[Reference | SizeMismatch]:
            missing = self._missing(conn, record.repository, references)
            if missing:
                return missing
            now = time.time()
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
        r, m = t.manifest_references, t.manifests

        def run(conn: Connection) -> tuple[frozenset[str], frozenset[str]]:
            tags = conn.execute(
                sa.select(t.tags.c.name, t.tags.c.digest).where(
                    t.tags.c.repository == repository
                )
            )
            frontier = {digest for name, digest in tags if tag_allowed(name)}
            manifests = set(frontier)
            for _ in range(_MAX_DEPTH):
                if not frontier:
                    break
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

        return await self._db.read(run)


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
        self.db = db
        self.blobs: BlobIndex = SqlBlobIndex(db)
        self.uploads: UploadIndex = SqlUploadIndex(db)
        self.manifests: ManifestIndex = SqlManifestIndex(db)
        self.repositories: RepositoryIndex = SqlRepositoryIndex(db)

    async def close(self) -> None:
        await self.db.close()
