"""Blob records, repository links and upload sessions on SQLAlchemy Core.

The ``BlobIndex`` and ``UploadIndex`` halves of ``SqlMetadataStore``, with the row
helpers the GC fence shares (``lock_blob``, ``insert_new``): every operation that makes
a blob live locks and touches its row, so a collector deciding on the same row either
sees it or is seen (see ``sql_gc``).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database, insert_ignore
from cargohold.metadata.store import Tombstone, UploadRecord

_UPLOAD_COLUMNS = (
    t.uploads.c.id,
    t.uploads.c.repository,
    t.uploads.c.size,
    t.uploads.c.created_at,
    t.uploads.c.updated_at,
)
_UPLOAD = sa.select(*_UPLOAD_COLUMNS).where(t.uploads.c.id == sa.bindparam("id"))


def ensure_repository(db: Database, conn: Connection, repository: str) -> None:
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
    ensure_repository(db, conn, repository)
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
