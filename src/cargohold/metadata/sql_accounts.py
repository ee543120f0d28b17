"""``SqlAccountStore``: the ``AccountStore`` on SQLAlchemy Core (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cargohold.metadata import schema as t
from cargohold.metadata.accounts import (
    AuditEvent,
    AuditLog,
    GrantIndex,
    GrantRecord,
    KeyIndex,
    KeyRecord,
    OidcIdentityIndex,
    OidcIdentityRecord,
    OrganizationIndex,
    PullTokenIndex,
    PullTokenRecord,
    RefreshTokenIndex,
    RefreshTokenRecord,
    RepositorySettingsIndex,
    RepositorySettingsRecord,
    UserIndex,
    UserRecord,
)
from cargohold.metadata.database import Database, insert_ignore
from cargohold.metadata.sql_webhooks import delete_organization_webhooks


def _tags_out(value: str | None) -> tuple[str, ...] | None:
    return tuple(json.loads(value)) if value is not None else None


def _tags_in(value: tuple[str, ...] | None) -> str | None:
    return json.dumps(list(value)) if value is not None else None


# Point queries on the token path, run through ``Database.fetch_*`` (compiled once).
# The columns ``UserRecord`` holds, by name (never by position in the table).
_USER_COLUMNS = (
    t.users.c.name,
    t.users.c.password_hash,
    t.users.c.is_admin,
    t.users.c.disabled,
    t.users.c.created_at,
    t.users.c.email,
)
_USER = sa.select(*_USER_COLUMNS).where(t.users.c.name == sa.bindparam("name"))
_GRANTS = sa.select(t.grants).where(t.grants.c.principal == sa.bindparam("principal"))
_PULL_TOKEN = sa.select(t.pull_tokens).where(t.pull_tokens.c.id == sa.bindparam("id"))
_REPOSITORY_SETTINGS = sa.select(t.repository_settings).where(
    t.repository_settings.c.repository == sa.bindparam("repository")
)


def _grant(row: Any) -> GrantRecord:
    return GrantRecord(
        row.id,
        row.principal,
        row.organization,
        row.repository,
        row.role,
        _tags_out(row.tags),
        row.created_at,
    )


class _Index:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _rows(self, query: sa.Executable) -> list[Any]:
        return await self._db.read(lambda conn: list(conn.execute(query).all()))

    async def _row(self, query: sa.Executable) -> Any:
        return await self._db.read(lambda conn: conn.execute(query).first())

    async def _changed(self, query: sa.Executable) -> int:
        return await self._db.write(lambda conn: conn.execute(query).rowcount)

    async def _inserted(self, table: sa.Table, **values: Any) -> bool:
        # SQLAlchemy keeps an INSERT's rowcount only when asked: without it, psycopg's
        # answer is -1 and every create on PostgreSQL looked like a taken name.
        query = insert_ignore(self._db, table, **values).execution_options(
            preserve_rowcount=True
        )
        return await self._changed(query) == 1


class SqlUserIndex(_Index):
    async def get(self, name: str) -> UserRecord | None:
        row = await self._db.fetch_row(_USER, {"name": name})
        if row is None:
            return None
        name, password_hash, is_admin, disabled, created_at, email = row
        return UserRecord(
            name, password_hash, bool(is_admin), bool(disabled), created_at, email
        )

    async def create(self, record: UserRecord) -> bool:
        return await self._inserted(
            t.users,
            name=record.name,
            password_hash=record.password_hash,
            is_admin=record.is_admin,
            disabled=record.disabled,
            created_at=record.created_at,
        )

    async def update(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        is_admin: bool | None = None,
    ) -> bool:
        values = {
            k: v
            for k, v in {
                "password_hash": password_hash,
                "disabled": disabled,
                "is_admin": is_admin,
            }.items()
            if v is not None
        }
        if not values:
            return await self.get(name) is not None
        query = sa.update(t.users).where(t.users.c.name == name).values(**values)
        return await self._changed(query) == 1

    async def delete(self, name: str) -> bool:
        principal = f"user:{name}"

        def run(conn: Connection) -> bool:
            conn.execute(sa.delete(t.grants).where(t.grants.c.principal == principal))
            return (
                conn.execute(sa.delete(t.users).where(t.users.c.name == name)).rowcount
                > 0
            )

        return await self._db.write(run)

    async def all(self) -> list[UserRecord]:
        rows = await self._rows(sa.select(*_USER_COLUMNS).order_by(t.users.c.name))
        return [UserRecord(*row) for row in rows]

    async def set_email(self, name: str, email: str | None) -> bool:
        query = sa.update(t.users).where(t.users.c.name == name).values(email=email)
        return await self._changed(query) == 1


class SqlOrganizationIndex(_Index):
    async def create(self, name: str) -> bool:
        return await self._inserted(t.organizations, name=name, created_at=time.time())

    async def exists(self, name: str) -> bool:
        query = sa.select(t.organizations.c.name).where(t.organizations.c.name == name)
        return await self._row(query) is not None

    async def delete(self, name: str) -> bool:
        def run(conn: Connection) -> bool:
            conn.execute(sa.delete(t.grants).where(t.grants.c.organization == name))
            # Its repositories' settings go too: a new organization of the same name
            # must not inherit public repositories.
            prefix = f"{name}/"
            settings = t.repository_settings
            conn.execute(
                sa.delete(settings).where(
                    sa.func.substr(settings.c.repository, 1, len(prefix)) == prefix
                )
            )
            conn.execute(
                sa.update(t.pull_tokens)
                .where(
                    t.pull_tokens.c.organization == name,
                    t.pull_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
            )
            delete_organization_webhooks(conn, name)
            query = sa.delete(t.organizations).where(t.organizations.c.name == name)
            return conn.execute(query).rowcount > 0

        return await self._db.write(run)

    async def all(self) -> list[str]:
        query = sa.select(t.organizations.c.name).order_by(t.organizations.c.name)
        return [row.name for row in await self._rows(query)]

    async def set_contact(self, name: str, address: str | None) -> bool:
        o = t.organizations
        query = sa.update(o).where(o.c.name == name).values(security_contact=address)
        return await self._changed(query) == 1

    async def contacts(self) -> dict[str, str | None]:
        o = t.organizations
        query = sa.select(o.c.name, o.c.security_contact).order_by(o.c.name)
        return {row.name: row.security_contact for row in await self._rows(query)}


class SqlGrantIndex(_Index):
    async def for_principal(self, principal: str) -> list[GrantRecord]:
        rows = await self._db.fetch_all(_GRANTS, {"principal": principal})
        return [
            GrantRecord(gid, who, org, repo, role, _tags_out(tags), at)
            for gid, who, org, repo, role, tags, at in rows
        ]

    async def add(
        self,
        principal: str,
        organization: str,
        repository: str,
        role: str,
        tags: tuple[str, ...] | None,
    ) -> GrantRecord:
        now = time.time()

        def run(conn: Connection) -> int:
            result = conn.execute(
                sa.insert(t.grants).values(
                    principal=principal,
                    organization=organization,
                    repository=repository,
                    role=role,
                    tags=_tags_in(tags),
                    created_at=now,
                )
            )
            key = result.inserted_primary_key
            assert key is not None  # noqa: S101 - an INSERT has a primary key
            return int(key[0])

        grant_id = await self._db.write(run)
        return GrantRecord(
            grant_id, principal, organization, repository, role, tags, now
        )

    async def remove(self, grant_id: int) -> bool:
        return (
            await self._changed(sa.delete(t.grants).where(t.grants.c.id == grant_id))
            > 0
        )

    async def remove_principal(self, principal: str, organization: str | None) -> int:
        query = sa.delete(t.grants).where(t.grants.c.principal == principal)
        if organization is not None:
            query = query.where(t.grants.c.organization == organization)
        return await self._changed(query)

    async def query(
        self, *, organization: str | None = None, principal: str | None = None
    ) -> list[GrantRecord]:
        query = sa.select(t.grants).order_by(t.grants.c.id)
        if organization is not None:
            query = query.where(t.grants.c.organization == organization)
        if principal is not None:
            query = query.where(t.grants.c.principal == principal)
        return [_grant(row) for row in await self._rows(query)]


class SqlPullTokenIndex(_Index):
    async def create(self, record: PullTokenRecord) -> None:
        query = sa.insert(t.pull_tokens).values(
            id=record.id,
            organization=record.organization,
            secret_hash=record.secret_hash,
            description=record.description,
            created_by=record.created_by,
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
        )
        await self._changed(query)

    async def get(self, token_id: str) -> PullTokenRecord | None:
        row = await self._db.fetch_row(_PULL_TOKEN, {"id": token_id})
        return PullTokenRecord(*row) if row else None

    async def query(self, organization: str | None) -> list[PullTokenRecord]:
        query = sa.select(t.pull_tokens).order_by(t.pull_tokens.c.created_at)
        if organization is not None:
            query = query.where(t.pull_tokens.c.organization == organization)
        return [PullTokenRecord(*row) for row in await self._rows(query)]

    async def revoke(self, token_id: str, at: float) -> bool:
        query = (
            sa.update(t.pull_tokens)
            .where(t.pull_tokens.c.id == token_id, t.pull_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return await self._changed(query) == 1


class SqlOidcIdentityIndex(_Index):
    @staticmethod
    def _record(row: Any) -> OidcIdentityRecord:
        return OidcIdentityRecord(
            row.name,
            row.issuer,
            row.audience,
            row.subject,
            json.loads(row.claims),
            row.created_at,
        )

    async def create(self, record: OidcIdentityRecord) -> bool:
        return await self._inserted(
            t.oidc_identities,
            name=record.name,
            issuer=record.issuer,
            audience=record.audience,
            subject=record.subject,
            claims=json.dumps(record.claims),
            created_at=record.created_at,
        )

    async def get(self, name: str) -> OidcIdentityRecord | None:
        row = await self._row(
            sa.select(t.oidc_identities).where(t.oidc_identities.c.name == name)
        )
        return self._record(row) if row else None

    async def all(self) -> list[OidcIdentityRecord]:
        query = sa.select(t.oidc_identities).order_by(t.oidc_identities.c.name)
        return [self._record(row) for row in await self._rows(query)]

    async def delete(self, name: str) -> bool:
        principal = f"oidc:{name}"

        def run(conn: Connection) -> bool:
            conn.execute(sa.delete(t.grants).where(t.grants.c.principal == principal))
            query = sa.delete(t.oidc_identities).where(t.oidc_identities.c.name == name)
            return conn.execute(query).rowcount > 0

        return await self._db.write(run)


class SqlRepositorySettingsIndex(_Index):
    @staticmethod
    def _record(row: Any) -> RepositorySettingsRecord:
        return RepositorySettingsRecord(
            row.repository, row.visibility, _tags_out(row.starter_tags), row.updated_at
        )

    async def get(self, repository: str) -> RepositorySettingsRecord | None:
        row = await self._db.fetch_row(_REPOSITORY_SETTINGS, {"repository": repository})
        if row is None:
            return None
        name, visibility, starter_tags, updated_at = row
        return RepositorySettingsRecord(
            name, visibility, _tags_out(starter_tags), updated_at
        )

    async def put(self, record: RepositorySettingsRecord) -> None:
        values = {
            "visibility": record.visibility,
            "starter_tags": _tags_in(record.starter_tags),
            "updated_at": record.updated_at,
        }

        def run(conn: Connection) -> None:
            updated = conn.execute(
                sa.update(t.repository_settings)
                .where(t.repository_settings.c.repository == record.repository)
                .values(**values)
            ).rowcount
            if not updated:
                conn.execute(
                    sa.insert(t.repository_settings).values(
                        repository=record.repository, **values
                    )
                )

        await self._db.write(run)

    async def all(self) -> list[RepositorySettingsRecord]:
        query = sa.select(t.repository_settings).order_by(
            t.repository_settings.c.repository
        )
        return [self._record(row) for row in await self._rows(query)]


_KEY_VERSION = sa.select(
    sa.func.count(),
    sa.func.max(t.signing_keys.c.created_at),
    sa.func.max(t.signing_keys.c.retired_at),
)


class SqlKeyIndex(_Index):
    async def all(self) -> list[KeyRecord]:
        query = sa.select(t.signing_keys).order_by(t.signing_keys.c.created_at)
        return [KeyRecord(*row) for row in await self._rows(query)]

    async def add(self, record: KeyRecord) -> None:
        await self._changed(
            sa.insert(t.signing_keys).values(
                kid=record.kid,
                algorithm=record.algorithm,
                private_pem=record.private_pem,
                created_at=record.created_at,
                retired_at=record.retired_at,
            )
        )

    async def retire_others(self, kid: str, at: float) -> None:
        await self._changed(
            sa.update(t.signing_keys)
            .where(t.signing_keys.c.kid != kid, t.signing_keys.c.retired_at.is_(None))
            .values(retired_at=at)
        )

    async def purge(self, retired_before: float) -> int:
        return await self._changed(
            sa.delete(t.signing_keys).where(
                t.signing_keys.c.retired_at < retired_before
            )
        )

    async def version(self) -> tuple[int, float, float]:
        row = await self._row(_KEY_VERSION)
        count, created, retired = row or (0, None, None)
        return int(count), float(created or 0.0), float(retired or 0.0)


class SqlRefreshTokenIndex(_Index):
    async def create(self, record: RefreshTokenRecord) -> None:
        await self._changed(
            sa.insert(t.refresh_tokens).values(
                id=record.id,
                principal=record.principal,
                secret_hash=record.secret_hash,
                created_at=record.created_at,
                expires_at=record.expires_at,
                revoked_at=record.revoked_at,
            )
        )

    async def get(self, token_id: str) -> RefreshTokenRecord | None:
        row = await self._row(
            sa.select(t.refresh_tokens).where(t.refresh_tokens.c.id == token_id)
        )
        return RefreshTokenRecord(*row) if row else None

    async def revoke_principal(self, principal: str, at: float) -> int:
        return await self._changed(
            sa.update(t.refresh_tokens)
            .where(
                t.refresh_tokens.c.principal == principal,
                t.refresh_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )


def _cut(value: str, column: sa.Column[Any]) -> str:
    """``value`` cut to the column's declared width (PostgreSQL enforces it)."""
    width = getattr(column.type, "length", None)
    return value[:width] if width else value


class SqlAuditLog(_Index):
    async def append(self, *events: AuditEvent) -> None:
        # Events carry what clients sent (a failed login's username, of any length):
        # cut, never refused, so that one long value cannot lose its whole batch.
        c = t.audit_events.c
        rows = [
            {
                "at": e.at or time.time(),
                "actor": _cut(e.actor, c.actor),
                "action": _cut(e.action, c.action),
                "target": _cut(e.target, c.target),
                "outcome": _cut(e.outcome, c.outcome),
                "client": _cut(e.client, c.client),
                "detail": e.detail,
            }
            for e in events
        ]
        if rows:
            await self._db.write(
                lambda conn: conn.execute(sa.insert(t.audit_events), rows)
            )

    async def query(
        self, *, after_id: int, limit: int, actor: str | None = None
    ) -> list[AuditEvent]:
        e = t.audit_events
        query = sa.select(e).where(e.c.id > after_id).order_by(e.c.id).limit(limit)
        if actor is not None:
            query = query.where(e.c.actor == actor)
        return [
            AuditEvent(
                actor=row.actor,
                action=row.action,
                target=row.target,
                outcome=row.outcome,
                client=row.client,
                detail=row.detail,
                at=row.at,
                id=row.id,
            )
            for row in await self._rows(query)
        ]


class SqlAccountStore:
    def __init__(self, db: Database) -> None:
        self.users: UserIndex = SqlUserIndex(db)
        self.organizations: OrganizationIndex = SqlOrganizationIndex(db)
        self.grants: GrantIndex = SqlGrantIndex(db)
        self.pull_tokens: PullTokenIndex = SqlPullTokenIndex(db)
        self.oidc: OidcIdentityIndex = SqlOidcIdentityIndex(db)
        self.repository_settings: RepositorySettingsIndex = SqlRepositorySettingsIndex(
            db
        )
        self.keys: KeyIndex = SqlKeyIndex(db)
        self.refresh_tokens: RefreshTokenIndex = SqlRefreshTokenIndex(db)
        self.audit: AuditLog = SqlAuditLog(db)
