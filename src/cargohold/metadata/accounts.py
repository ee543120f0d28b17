"""The ``AccountStore`` protocol: identities, entitlements, keys and the audit log.

Like ``MetadataStore``, each method is one transaction and the store is the only source
of truth; services above it hold at most short-lived caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    password_hash: str
    is_admin: bool
    disabled: bool
    created_at: float
    email: str | None = None  # where advisories reach them (migration 0005)


@dataclass(frozen=True, slots=True)
class GrantRecord:
    id: int
    principal: str
    organization: str
    repository: str
    role: str
    tags: tuple[str, ...] | None
    created_at: float


@dataclass(frozen=True, slots=True)
class PullTokenRecord:
    id: str
    organization: str
    secret_hash: str
    description: str
    created_by: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class OidcIdentityRecord:
    name: str
    issuer: str
    audience: str
    subject: str
    claims: dict[str, str]
    created_at: float


@dataclass(frozen=True, slots=True)
class RepositorySettingsRecord:
    repository: str
    visibility: str
    starter_tags: tuple[str, ...] | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class KeyRecord:
    kid: str
    algorithm: str
    private_pem: str
    created_at: float
    retired_at: float | None


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    id: str
    principal: str
    secret_hash: str
    created_at: float
    expires_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: str
    action: str
    target: str
    outcome: str  # "ok" | "denied" | "failed"
    client: str
    detail: str | None = None
    at: float = 0.0
    id: int = 0


class UserIndex(Protocol):
    async def get(self, name: str) -> UserRecord | None: ...
    async def create(self, record: UserRecord) -> bool:
        """``False`` if the name is taken."""
        ...

    async def update(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        is_admin: bool | None = None,
    ) -> bool: ...
    async def delete(self, name: str) -> bool: ...
    async def all(self) -> list[UserRecord]: ...
    async def set_email(self, name: str, email: str | None) -> bool:
        """Set (``None``: clear) the user's address; ``False`` if no such user."""
        ...


class OrganizationIndex(Protocol):
    async def create(self, name: str) -> bool: ...
    async def exists(self, name: str) -> bool: ...
    async def delete(self, name: str) -> bool:
        """Delete the organization with its grants, pull tokens (revoked) and the
        settings of its repositories."""
        ...

    async def all(self) -> list[str]: ...
    async def set_contact(self, name: str, address: str | None) -> bool:
        """Set (``None``: clear) the security contact; ``False`` if no such org."""
        ...

    async def contacts(self) -> dict[str, str | None]:
        """Every organization's security contact (``None``: none set)."""
        ...


class GrantIndex(Protocol):
    async def for_principal(self, principal: str) -> list[GrantRecord]: ...
    async def add(
        self,
        principal: str,
        organization: str,
        repository: str,
        role: str,
        tags: tuple[str, ...] | None,
    ) -> GrantRecord: ...
    async def remove(self, grant_id: int) -> bool: ...
    async def remove_principal(
        self, principal: str, organization: str | None
    ) -> int: ...
    async def query(
        self, *, organization: str | None = None, principal: str | None = None
    ) -> list[GrantRecord]: ...


class PullTokenIndex(Protocol):
    async def create(self, record: PullTokenRecord) -> None: ...
    async def get(self, token_id: str) -> PullTokenRecord | None: ...
    async def query(self, organization: str | None) -> list[PullTokenRecord]: ...
    async def revoke(self, token_id: str, at: float) -> bool: ...


class OidcIdentityIndex(Protocol):
    async def create(self, record: OidcIdentityRecord) -> bool: ...
    async def get(self, name: str) -> OidcIdentityRecord | None: ...
    async def all(self) -> list[OidcIdentityRecord]: ...
    async def delete(self, name: str) -> bool: ...


class RepositorySettingsIndex(Protocol):
    async def get(self, repository: str) -> RepositorySettingsRecord | None: ...
    async def put(self, record: RepositorySettingsRecord) -> None: ...
    async def all(self) -> list[RepositorySettingsRecord]: ...


class KeyIndex(Protocol):
    async def all(self) -> list[KeyRecord]: ...
    async def add(self, record: KeyRecord) -> None: ...
    async def retire_others(self, kid: str, at: float) -> None:
        """Mark every other unretired key retired at ``at``."""
        ...

    async def purge(self, retired_before: float) -> int: ...
    async def version(self) -> tuple[int, float, float]:
        """A cheap fingerprint of the key table (count, newest creation, newest
        retirement): it moves whenever a key is added, retired or purged."""
        ...


class RefreshTokenIndex(Protocol):
    async def create(self, record: RefreshTokenRecord) -> None: ...
    async def get(self, token_id: str) -> RefreshTokenRecord | None: ...
    async def revoke_principal(self, principal: str, at: float) -> int: ...


class AuditLog(Protocol):
    async def append(self, *events: AuditEvent) -> None:
        """Append events in one transaction.

        Text fields longer than the store keeps are cut, never refused (``detail``
        is kept whole): an event records what a client sent, whatever its length.
        """
        ...

    async def query(
        self, *, after_id: int, limit: int, actor: str | None = None
    ) -> list[AuditEvent]: ...


class AccountStore(Protocol):
    users: UserIndex
    organizations: OrganizationIndex
    grants: GrantIndex
    pull_tokens: PullTokenIndex
    oidc: OidcIdentityIndex
    repository_settings: RepositorySettingsIndex
    keys: KeyIndex
    refresh_tokens: RefreshTokenIndex
    audit: AuditLog
