"""``SqlSignatureStore``: ``image_signatures`` and what signing reads (SQLite,
PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata.database import Database, insert_ignore
from cargohold.metadata.outbox import OutboxMessage, enqueue_in
from cargohold.metadata.schema import image_signatures, manifests, outbox, tags
from cargohold.metadata.signatures import ManifestInfo, StoredSignature

_S = image_signatures.c
_M = manifests.c


class SqlSignatureStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        repository: str,
        digest: str,
        content: bytes,
        *,
        key_id: str | None,
        created_by: str,
        now: float,
    ) -> bool:
        insert = insert_ignore(
            self._db,
            image_signatures,
            repository=repository,
            digest=digest,
            content_digest="sha256:" + hashlib.sha256(content).hexdigest(),
            content=content,
            key_id=key_id,
            created_by=created_by,
            created_at=now,
        ).execution_options(preserve_rowcount=True)
        return await self._db.write(lambda conn: conn.execute(insert).rowcount == 1)

    async def for_manifest(self, repository: str, digest: str) -> list[StoredSignature]:
        query = (
            sa.select(
                _S.id,
                _S.repository,
                _S.digest,
                _S.content,
                _S.content_digest,
                _S.key_id,
                _S.created_by,
                _S.created_at,
            )
            .where(_S.repository == repository, _S.digest == digest)
            .order_by(_S.id)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [
            StoredSignature(
                int(r.id),
                r.repository,
                r.digest,
                bytes(r.content),
                r.content_digest,
                r.key_id,
                r.created_by,
                float(r.created_at),
            )
            for r in rows
        ]

    async def signed_by(self, repository: str, digest: str, key_id: str) -> bool:
        query = (
            sa.select(_S.id)
            .where(
                _S.repository == repository, _S.digest == digest, _S.key_id == key_id
            )
            .limit(1)
        )
        found = await self._db.read(lambda conn: conn.execute(query).first())
        return found is not None

    async def manifest(self, repository: str, digest: str) -> ManifestInfo | None:
        query = sa.select(_M.digest, _M.media_type, _M.content, _M.subject).where(
            _M.repository == repository, _M.digest == digest
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        return ManifestInfo(
            row.digest, row.media_type, bytes(row.content), row.subject, ()
        )

    async def manifests(self, repository: str) -> list[ManifestInfo]:
        query = (
            sa.select(_M.digest, _M.media_type, _M.content, _M.subject)
            .where(_M.repository == repository)
            .order_by(_M.digest)
        )
        tagged = sa.select(tags.c.name, tags.c.digest).where(
            tags.c.repository == repository
        )

        def read(conn: Connection) -> list[ManifestInfo]:
            names: dict[str, list[str]] = {}
            for row in conn.execute(tagged):
                names.setdefault(row.digest, []).append(row.name)
            return [
                ManifestInfo(
                    r.digest,
                    r.media_type,
                    bytes(r.content),
                    r.subject,
                    tuple(sorted(names.get(r.digest, ()))),
                )
                for r in conn.execute(query)
            ]

        return await self._db.read(read)

    async def queue(self, messages: Sequence[OutboxMessage], *, now: float) -> int:
        keys = [m.key for m in messages]
        existing = sa.select(sa.func.count()).where(outbox.c.key.in_(keys))

        def write(conn: Connection) -> int:
            if not keys:
                return 0
            before = int(conn.execute(existing).scalar_one())
            enqueue_in(conn, messages, now=now)
            return int(conn.execute(existing).scalar_one()) - before

        return await self._db.write(write)

    async def queue_counts(self, channel: str) -> dict[str, int]:
        query = (
            sa.select(outbox.c.state, sa.func.count())
            .where(outbox.c.channel == channel)
            .group_by(outbox.c.state)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return {str(state): int(count) for state, count in rows}
