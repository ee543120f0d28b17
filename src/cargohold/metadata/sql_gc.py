"""``SqlGarbageIndex``: the store side of online garbage collection.

Each deciding method runs in one transaction in two steps: lock the rows it decides
about (``SELECT ... ORDER BY key FOR UPDATE``: a stable order, so two collectors cannot
deadlock), then check the condition in a *new* statement. On PostgreSQL (READ COMMITTED)
that statement sees every transaction that held those rows before: an upload claim, a
mount or a manifest PUT, which lock the same rows (``sql_blobs.lock_blob``,
``SqlManifestIndex._touch``). A writer that comes after waits for the lock and then
sees the tombstone or the missing row. On SQLite writers are serialised by
``BEGIN IMMEDIATE`` and ``FOR UPDATE`` is omitted.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.sql import reach
from cargohold.metadata.sql_blobs import insert_new
from cargohold.metadata.store import Tombstone

_b, _rb, _r, _m = t.blobs, t.repository_blobs, t.manifest_references, t.manifests

# A link is used while a manifest in its repository references the blob.
_LINK_USED = (
    sa.exists()
    .where(
        _r.c.repository == _rb.c.repository,
        _r.c.target == _rb.c.digest,
        _r.c.kind == "blob",
    )
    .correlate(_rb)
)
# A blob is used while a repository links it, a manifest references it (a blob or a
# child by that digest), or an open upload session is committing it.
_BLOB_USED = sa.or_(
    sa.exists().where(_rb.c.digest == _b.c.digest).correlate(_b),
    sa.exists().where(_r.c.target == _b.c.digest).correlate(_b),
    sa.exists().where(t.uploads.c.claimed_digest == _b.c.digest).correlate(_b),
)


def _unused(cutoff: float) -> tuple[Any, ...]:
    return (
        _b.c.state.in_(("present", "pending")),
        _b.c.touched_at < cutoff,
        ~_BLOB_USED,
    )


class SqlGarbageIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def dead_links(self, cutoff: float) -> list[tuple[str, str]]:
        query = sa.select(_rb.c.repository, _rb.c.digest).where(
            _rb.c.touched_at < cutoff, ~_LINK_USED
        )
        return await self._db.read(
            lambda conn: [(row[0], row[1]) for row in conn.execute(query)]
        )

    async def drop_links(
        self, links: list[tuple[str, str]], cutoff: float
    ) -> list[tuple[str, str]]:
        if not links:
            return []
        key = sa.tuple_(_rb.c.repository, _rb.c.digest)

        def run(conn: Connection) -> list[tuple[str, str]]:
            conn.execute(
                sa.select(_rb.c.digest)
                .where(key.in_(links))
                .order_by(_rb.c.repository, _rb.c.digest)
                .with_for_update()
            ).all()
            dead = [
                (row[0], row[1])
                for row in conn.execute(
                    sa.select(_rb.c.repository, _rb.c.digest).where(
                        key.in_(links), _rb.c.touched_at < cutoff, ~_LINK_USED
                    )
                )
            ]
            if dead:
                conn.execute(sa.delete(_rb).where(key.in_(dead)))
            return dead

        return await self._db.write(run)

    async def unused_blobs(self, cutoff: float) -> dict[str, int]:
        query = sa.select(_b.c.digest, _b.c.size).where(*_unused(cutoff))
        return await self._db.read(lambda conn: dict(conn.execute(query).all()))

    async def mark_unused(
        self, digests: list[str], cutoff: float, now: float
    ) -> list[Tombstone]:
        if not digests:
            return []

        def run(conn: Connection) -> list[Tombstone]:
            conn.execute(
                sa.select(_b.c.digest)
                .where(_b.c.digest.in_(digests))
                .order_by(_b.c.digest)
                .with_for_update()
            ).all()
            unused = conn.execute(
                sa.select(_b.c.digest, _b.c.size).where(
                    _b.c.digest.in_(digests), *_unused(cutoff)
                )
            ).all()
            marked = [Tombstone(digest, size, now) for digest, size in unused]
            if marked:
                conn.execute(
                    sa.update(_b)
                    .where(_b.c.digest.in_([m.digest for m in marked]))
                    .values(state="deleting", touched_at=now)
                )
            return marked

        return await self._db.write(run)

    async def mark_orphans(self, digests: list[str], now: float) -> list[Tombstone]:
        def run(conn: Connection) -> list[Tombstone]:
            marked = []
            for digest in digests:
                inserted = insert_new(
                    self._db,
                    conn,
                    _b,
                    digest=digest,
                    size=0,
                    created_at=now,
                    touched_at=now,
                    state="deleting",
                )
                if inserted:
                    marked.append(Tombstone(digest, 0, now))
            return marked

        return await self._db.write(run)

    async def known(self) -> set[str]:
        query = sa.select(_b.c.digest)
        return await self._db.read(lambda conn: set(conn.execute(query).scalars()))

    async def tombstones(self) -> list[Tombstone]:
        query = sa.select(_b.c.digest, _b.c.size, _b.c.touched_at).where(
            _b.c.state == "deleting"
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [Tombstone(digest, size, lease) for digest, size, lease in rows]

    async def take_over(
        self, tombstones: list[Tombstone], now: float
    ) -> list[Tombstone]:
        def run(conn: Connection) -> list[Tombstone]:
            taken = []
            for stone in tombstones:
                updated = conn.execute(
                    sa.update(_b).where(*_holding(stone)).values(touched_at=now)
                ).rowcount
                if updated:
                    taken.append(Tombstone(stone.digest, stone.size, now))
            return taken

        return await self._db.write(run)

    async def drop(self, tombstones: list[Tombstone]) -> list[Tombstone]:
        def run(conn: Connection) -> list[Tombstone]:
            return [
                stone
                for stone in tombstones
                if conn.execute(sa.delete(_b).where(*_holding(stone))).rowcount
            ]

        return await self._db.write(run)

    async def collectable(self, cutoff: float, *, untagged: bool) -> dict[str, int]:
        def run(conn: Connection) -> dict[str, int]:
            live_manifests: set[tuple[str, str]] | None = None
            if untagged:
                young = conn.execute(
                    sa.select(_m.c.repository, _m.c.digest).where(
                        _m.c.touched_at >= cutoff
                    )
                )
                live_manifests = {(row[0], row[1]) for row in young}
                repositories = conn.execute(sa.select(_m.c.repository).distinct())
                for repository in list(repositories.scalars()):
                    reached, _ = reach(conn, repository, lambda _: True, None)
                    live_manifests |= {(repository, d) for d in reached}
            references = conn.execute(
                sa.select(_r.c.repository, _r.c.manifest, _r.c.target)
            )
            live = {
                target
                for repository, manifest, target in references
                if live_manifests is None or (repository, manifest) in live_manifests
            }
            live.update(
                conn.execute(
                    sa.select(_rb.c.digest).where(_rb.c.touched_at >= cutoff)
                ).scalars()
            )
            live.update(conn.execute(sa.select(t.uploads.c.claimed_digest)).scalars())
            rows = conn.execute(
                sa.select(_b.c.digest, _b.c.size).where(
                    sa.or_(_b.c.touched_at < cutoff, _b.c.state == "deleting")
                )
            )
            return {digest: size for digest, size in rows if digest not in live}

        return await self._db.read(run)

    async def unreachable_manifests(self, cutoff: float) -> list[tuple[str, str, int]]:
        def run(conn: Connection) -> list[tuple[str, str, int]]:
            found = []
            repositories = conn.execute(sa.select(_m.c.repository).distinct())
            for repository in list(repositories.scalars()):
                reached, _ = reach(conn, repository, lambda _: True, None)
                rows = conn.execute(
                    sa.select(_m.c.digest, sa.func.length(_m.c.content)).where(
                        _m.c.repository == repository, _m.c.touched_at < cutoff
                    )
                )
                found += [
                    (repository, digest, int(size))
                    for digest, size in rows
                    if digest not in reached
                ]
            return found

        return await self._db.read(run)

    async def delete_unreachable(
        self, repository: str, digests: list[str], cutoff: float
    ) -> list[str]:
        if not digests:
            return []
        here = _m.c.repository == repository

        def run(conn: Connection) -> list[str]:
            conn.execute(
                sa.select(_m.c.digest)
                .where(here, _m.c.digest.in_(digests))
                .order_by(_m.c.digest)
                .with_for_update()
            ).all()
            reached, _ = reach(conn, repository, lambda _: True, None)
            old = conn.execute(
                sa.select(_m.c.digest).where(
                    here, _m.c.digest.in_(digests), _m.c.touched_at < cutoff
                )
            ).scalars()
            doomed = sorted(set(old) - reached)
            if doomed:
                conn.execute(sa.delete(_m).where(here, _m.c.digest.in_(doomed)))
                conn.execute(
                    sa.delete(_r).where(
                        _r.c.repository == repository, _r.c.manifest.in_(doomed)
                    )
                )
            return doomed

        return await self._db.write(run)


def _holding(stone: Tombstone) -> tuple[Any, ...]:
    """The row is still this tombstone, under the same lease."""
    return (
        _b.c.digest == stone.digest,
        _b.c.state == "deleting",
        _b.c.touched_at == stone.lease,
    )
