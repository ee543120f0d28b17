"""``SqlWebStore``: the ``WebStore`` on SQLAlchemy Core (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.web import CatalogRow, SessionUser, TagRow

if TYPE_CHECKING:
    from cargohold.metadata.database import Database

_R = t.repositories.c
_S = t.repository_settings.c
_W = t.web_sessions.c
_U = t.users.c


def _literal(text: str) -> str:
    """``text`` for a LIKE pattern, its wildcards escaped with a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _starter(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(json.loads(value))


class SqlWebStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def catalog(
        self,
        *,
        contains: str | None,
        after: str | None,
        limit: int,
        prefix: str | None = None,
        visibility: tuple[str | None, ...] | None = None,
    ) -> list[CatalogRow]:
        # Keyset paging on the primary key's index: ORDER BY and ">" use the same
        # collation, so pages neither skip nor repeat a name.
        name = _R.name
        query = (
            sa.select(_R.name, _R.created_at, _S.visibility, _S.starter_tags)
            .select_from(
                t.repositories.outerjoin(
                    t.repository_settings, _S.repository == _R.name
                )
            )
            .order_by(name)
            .limit(limit)
        )
        if after is not None:
            query = query.where(name > after)
        if contains:
            pattern = f"%{_literal(contains)}%"
            query = query.where(_R.name.like(pattern, escape="\\"))
        if prefix:
            query = query.where(_R.name.like(f"{_literal(prefix)}%", escape="\\"))
            if self._db.dialect == "sqlite":
                # SQLite compares names bytewise (BINARY): the names with the
                # prefix are one range of the primary key's index.
                query = query.where(_R.name >= prefix, _R.name < prefix + "\U0010ffff")
        if visibility is not None:
            stored = [v for v in visibility if v is not None]
            wanted = [_S.visibility.in_(stored)] if stored else []
            if None in visibility:
                wanted.append(_S.visibility.is_(None))
            query = query.where(sa.or_(*wanted) if wanted else sa.false())
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [CatalogRow(row[0], row[1], row[2], _starter(row[3])) for row in rows]

    async def organizations(self) -> list[tuple[str, str | None]]:
        if self._db.dialect == "postgresql":
            org = sa.func.split_part(_R.name, "/", 1)
        else:
            org = sa.func.substr(_R.name, 1, sa.func.instr(_R.name, "/") - 1)
        query = (
            sa.select(org.label("org"), _S.visibility)
            .select_from(
                t.repositories.outerjoin(
                    t.repository_settings, _S.repository == _R.name
                )
            )
            .where(_R.name.like("%/%"))
            .group_by(org, _S.visibility)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return sorted(
            ((str(row[0]), row[1]) for row in rows), key=lambda r: (r[0], r[1] or "")
        )

    async def tag_rows(self, repository: str, tags: list[str]) -> list[TagRow]:
        if not tags:
            return []
        g, m = t.tags.c, t.manifests.c
        query = (
            sa.select(g.name, g.digest, g.updated_at, m.media_type, m.content)
            .select_from(
                t.tags.join(
                    t.manifests,
                    sa.and_(m.repository == g.repository, m.digest == g.digest),
                )
            )
            .where(g.repository == repository, g.name.in_(tags))
        )
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        found = {
            row[0]: TagRow(row[0], row[1], row[2], row[3], bytes(row[4]))
            for row in rows
        }
        return [found[tag] for tag in tags if tag in found]

    async def create_session(
        self,
        id_hash: str,
        *,
        user: str,
        csrf: str,
        credential: str,
        now: float,
        expires_at: float,
    ) -> None:
        insert = sa.insert(t.web_sessions).values(
            id_hash=id_hash,
            user_name=user,
            csrf=csrf,
            credential=credential,
            created_at=now,
            expires_at=expires_at,
        )
        await self._db.write(lambda conn: conn.execute(insert))

    async def session_user(self, id_hash: str, *, now: float) -> SessionUser | None:
        query = (
            sa.select(
                _W.user_name,
                _U.is_admin,
                _W.csrf,
                _W.expires_at,
                _W.credential,
                _U.password_hash,
            )
            .select_from(t.web_sessions.join(t.users, _U.name == _W.user_name))
            .where(
                _W.id_hash == id_hash,
                _W.expires_at > now,
                _U.disabled == sa.false(),
            )
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        return SessionUser(row[0], bool(row[1]), row[2], row[3], row[4], row[5])

    async def delete_session(self, id_hash: str) -> None:
        delete = sa.delete(t.web_sessions).where(_W.id_hash == id_hash)
        await self._db.write(lambda conn: conn.execute(delete))

    async def purge_sessions(self, *, now: float) -> int:
        delete = sa.delete(t.web_sessions).where(_W.expires_at <= now)
        return await self._db.write(lambda conn: conn.execute(delete).rowcount)
