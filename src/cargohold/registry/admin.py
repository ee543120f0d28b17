"""``AdminService``: managing organizations, users, roles, pull tokens, CI identities,
entitlements and repository visibility, with an audit event for every change.

Who may manage what:

* administrators: everything;
* an organization's owners: its members' roles, its pull tokens, entitlements within it
  and the settings of its repositories;
* everyone: their own password.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from email.utils import parseaddr
from fnmatch import fnmatchcase

from cargohold.auth import passwords
from cargohold.auth.policy import ROLES, Principal
from cargohold.metadata.accounts import (
    AccountStore,
    AuditEvent,
    GrantRecord,
    OidcIdentityRecord,
    PullTokenRecord,
    RepositorySettingsRecord,
    UserRecord,
)
from cargohold.oci.errors import Denied, RegistryError
from cargohold.oci.names import RepositoryName
from cargohold.registry.access import AccessService
from cargohold.registry.accounts import PULL_TOKEN_PREFIX
from cargohold.registry.audit import AuditTrail

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_PRINCIPAL = re.compile(r"^(user|token|oidc):[A-Za-z0-9._-]+$")
MIN_PASSWORD_LENGTH = 12
# Wildcards allowed in an entitlement's repository pattern.
MAX_PATTERN_WILDCARDS = 3
MAX_PATTERN_LENGTH = 128
# An address with a dot in its domain, no spaces, quotes, angle brackets or commas.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
MAX_EMAIL = 254


class InvalidRequest(RegistryError):
    code = "INVALID_REQUEST"
    message = "invalid management request"
    status = 400


class NotFound(RegistryError):
    code = "NOT_FOUND"
    message = "no such object"
    status = 404


class Conflict(RegistryError):
    code = "CONFLICT"
    message = "already exists"
    status = 409


def check_email(value: object, *, field: str = "email") -> str | None:
    """A contact address (``None`` or ``""`` clears it); ``InvalidRequest`` if bad."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string or null")
    name, address = parseaddr(value)
    if (
        name
        or address != value
        or len(value) > MAX_EMAIL
        or not _EMAIL.fullmatch(value)
        or ".." in value
        or value.startswith(".")
        or value.split("@", 1)[0].endswith(".")
    ):
        raise InvalidRequest(
            f"{field} must be a plain address like name@example.org, got {value[:80]!r}"
        )
    return value


def _check_name(kind: str, value: str) -> str:
    if not _NAME.match(value) or len(value) > 64:  # noqa: PLR2004
        raise InvalidRequest(
            f"{kind} names are lower-case letters, digits and . _ - "
            f"(at most 64): {value[:80]!r}"
        )
    return value


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    return role


def _check_tags(tags: object) -> tuple[str, ...] | None:
    if tags is None:
        return None
    if not isinstance(tags, list | tuple) or not all(
        isinstance(t, str) and 0 < len(t) <= MAX_PATTERN_LENGTH for t in tags
    ):
        raise InvalidRequest("tags must be a list of glob patterns")
    return tuple(tags)


def _check_pattern(organization: str, repository: str) -> str:
    """A repository glob that can only match inside ``organization``."""
    # The pattern must itself start with the literal "<organization>/".
    if (
        not fnmatchcase(repository, f"{organization}/*")
        or repository.count("*") > MAX_PATTERN_WILDCARDS
    ):
        raise InvalidRequest(f"repository must be a pattern under {organization}/")
    return repository


@dataclass(frozen=True, slots=True)
class CreatedPullToken:
    record: PullTokenRecord
    secret: str  # shown once, never stored


class AdminService:
    def __init__(
        self, accounts: AccountStore, access: AccessService, audit: AuditTrail
    ) -> None:
        self._accounts = accounts
        self._access = access
        self._audit = audit

    # -- who may ---------------------------------------------------------------------

    @staticmethod
    def require_admin(actor: Principal) -> None:
        if not actor.is_admin:
            raise Denied("only an administrator may do this")

    async def require_owner(self, actor: Principal, organization: str) -> None:
        if actor.is_admin:
            return
        if actor.kind == "user":  # machine credentials never manage anything
            for grant in await self._accounts.grants.for_principal(actor.subject):
                if (
                    grant.organization == organization
                    and grant.role == "owner"
                    and grant.repository == f"{organization}/*"
                    and grant.tags is None
                ):
                    return
        raise Denied(f"only an owner of {organization!r} may do this")

    def _record(
        self,
        actor: Principal,
        action: str,
        target: str,
        client: str,
        detail: dict[str, object] | None = None,
    ) -> None:
        self._audit.record(
            actor.subject,
            action,
            target,
            client=client,
            detail=json.dumps(detail) if detail else None,
        )

    # -- organizations ---------------------------------------------------------------

    async def create_organization(
        self, actor: Principal, name: str, *, client: str
    ) -> None:
        self.require_admin(actor)
        if not await self._accounts.organizations.create(
            _check_name("organization", name)
        ):
            raise Conflict(f"organization {name!r} exists")
        self._record(actor, "organization.create", name, client)

    async def organizations(self, actor: Principal) -> list[str]:
        names = await self._accounts.organizations.all()
        if actor.is_admin:
            return names
        mine = {
            g.organization
            for g in await self._accounts.grants.for_principal(actor.subject)
        }
        return [n for n in names if n in mine]

    async def organization_contacts(
        self, actor: Principal
    ) -> list[tuple[str, str | None]]:
        """The organizations ``organizations`` lists, with their security contacts."""
        contacts = await self._accounts.organizations.contacts()
        return [(n, contacts.get(n)) for n in await self.organizations(actor)]

    async def set_security_contact(
        self, actor: Principal, name: str, address: str | None, *, client: str
    ) -> None:
        """Set the address advisories reach the organization's tokens and CI at."""
        await self.require_owner(actor, name)
        address = check_email(address, field="security_contact")
        if not await self._accounts.organizations.set_contact(name, address):
            raise NotFound(f"no organization {name!r}")
        self._record(actor, "organization.contact", name, client)

    async def set_email(
        self, actor: Principal, name: str, email: str | None, *, client: str
    ) -> None:
        """Set a user's address (administrators, or the user themself)."""
        if actor.subject != f"user:{name}":
            self.require_admin(actor)
        email = check_email(email)
        if not await self._accounts.users.set_email(name, email):
            raise NotFound(f"no user {name!r}")
        self._record(actor, "user.email", f"user:{name}", client)

    async def delete_organization(
        self, actor: Principal, name: str, *, client: str
    ) -> None:
        self.require_admin(actor)
        tokens = await self._accounts.pull_tokens.query(name)
        if not await self._accounts.organizations.delete(name):
            raise NotFound(f"no organization {name!r}")
        for token in tokens:
            self._access.forget(f"token:{token.id}")
        self._record(actor, "organization.delete", name, client)

    async def _existing_org(self, name: str) -> str:
        if not await self._accounts.organizations.exists(name):
            raise NotFound(f"no organization {name!r}")
        return name

    # -- users -----------------------------------------------------------------------

    async def create_user(
        self,
        actor: Principal,
        name: str,
        password: str,
        *,
        is_admin: bool = False,
        client: str,
    ) -> None:
        self.require_admin(actor)
        _check_name("user", name)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidRequest(
                f"passwords need at least {MIN_PASSWORD_LENGTH} characters"
            )
        record = UserRecord(
            name,
            passwords.hash_password(password),
            is_admin=is_admin,
            disabled=False,
            created_at=time.time(),
        )
        if not await self._accounts.users.create(record):
            raise Conflict(f"user {name!r} exists")
        self._record(actor, "user.create", f"user:{name}", client, {"admin": is_admin})

    async def users(self, actor: Principal) -> list[UserRecord]:
        self.require_admin(actor)
        return await self._accounts.users.all()

    async def set_password(
        self, actor: Principal, name: str, password: str, *, client: str
    ) -> None:
        if actor.subject != f"user:{name}":
            self.require_admin(actor)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidRequest(
                f"passwords need at least {MIN_PASSWORD_LENGTH} characters"
            )
        if not await self._accounts.users.update(
            name, password_hash=passwords.hash_password(password)
        ):
            raise NotFound(f"no user {name!r}")
        await self._accounts.refresh_tokens.revoke_principal(
            f"user:{name}", time.time()
        )
        self._record(actor, "user.password", f"user:{name}", client)

    async def delete_user(self, actor: Principal, name: str, *, client: str) -> None:
        self.require_admin(actor)
        if actor.subject == f"user:{name}":
            raise InvalidRequest("an administrator cannot delete their own account")
        if not await self._accounts.users.delete(name):
            raise NotFound(f"no user {name!r}")
        await self._accounts.refresh_tokens.revoke_principal(
            f"user:{name}", time.time()
        )
        self._access.forget(f"user:{name}")
        self._record(actor, "user.delete", f"user:{name}", client)

    # -- roles and entitlements ------------------------------------------------------

    async def set_member(
        self, actor: Principal, organization: str, user: str, role: str, *, client: str
    ) -> GrantRecord:
        """Give ``user`` a role on every repository of the organization.

        Replaces any role it had there.
        """
        await self._existing_org(organization)
        await self.require_owner(actor, organization)
        role = _check_role(role)
        if await self._accounts.users.get(user) is None:
            raise NotFound(f"no user {user!r}")
        principal = f"user:{user}"
        for grant in await self._accounts.grants.query(
            organization=organization, principal=principal
        ):
            if grant.repository == f"{organization}/*" and grant.tags is None:
                await self._accounts.grants.remove(grant.id)
        record = await self._accounts.grants.add(
            principal, organization, f"{organization}/*", role, None
        )
        self._record(
            actor, "member.set", f"{organization}:{user}", client, {"role": role}
        )
        return record

    async def remove_member(
        self, actor: Principal, organization: str, user: str, *, client: str
    ) -> None:
        await self.require_owner(actor, organization)
        removed = await self._accounts.grants.remove_principal(
            f"user:{user}", organization
        )
        if not removed:
            raise NotFound(f"{user!r} has no role in {organization!r}")
        self._record(actor, "member.remove", f"{organization}:{user}", client)

    async def add_grant(
        self,
        actor: Principal,
        *,
        principal: str,
        organization: str,
        repository: str,
        role: str,
        tags: list[str] | None,
        client: str,
    ) -> GrantRecord:
        """An entitlement: ``principal`` gets ``role`` on repositories matching
        ``repository`` (a glob inside the organization), limited to ``tags`` when given.
        """
        await self._existing_org(organization)
        await self.require_owner(actor, organization)
        if not _PRINCIPAL.match(principal):
            raise InvalidRequest(
                "principal must be user:<name>, token:<id> or oidc:<name>"
            )
        pattern = _check_pattern(organization, repository)
        role, limited = _check_role(role), _check_tags(tags)
        record = await self._accounts.grants.add(
            principal, organization, pattern, role, limited
        )
        self._record(
            actor,
            "grant.add",
            principal,
            client,
            {
                "organization": organization,
                "repository": repository,
                "role": role,
                "tags": tags,
            },
        )
        return record

    async def grants(self, actor: Principal, organization: str) -> list[GrantRecord]:
        await self.require_owner(actor, organization)
        return await self._accounts.grants.query(organization=organization)

    async def remove_grant(
        self, actor: Principal, organization: str, grant_id: int, *, client: str
    ) -> None:
        await self.require_owner(actor, organization)
        if not any(
            g.id == grant_id
            for g in await self._accounts.grants.query(organization=organization)
        ):
            raise NotFound(f"no grant {grant_id} in {organization!r}")
        await self._accounts.grants.remove(grant_id)
        self._record(actor, "grant.remove", str(grant_id), client)

    # -- pull tokens -----------------------------------------------------------------

    async def create_pull_token(
        self,
        actor: Principal,
        organization: str,
        *,
        description: str,
        role: str = "puller",
        repository: str | None = None,
        tags: list[str] | None = None,
        expires_in_days: float | None = None,
        client: str,
    ) -> CreatedPullToken:
        """A machine credential for the organization.

        Read-only unless ``role`` says so.
        """
        await self._existing_org(organization)
        await self.require_owner(actor, organization)
        pattern = _check_pattern(organization, repository or f"{organization}/*")
        role, limited = _check_role(role), _check_tags(tags)
        if expires_in_days is not None and expires_in_days <= 0:
            raise InvalidRequest(
                "expires_in_days must be positive (omit it: no expiry)"
            )
        token_id, secret = uuid.uuid4().hex, passwords.new_secret()
        now = time.time()
        expires_at = now + expires_in_days * 86400 if expires_in_days else None
        record = PullTokenRecord(
            token_id,
            organization,
            passwords.hash_secret(secret),
            description[:255],
            actor.subject,
            now,
            expires_at,
            None,
        )
        await self._accounts.pull_tokens.create(record)
        await self._accounts.grants.add(
            f"token:{token_id}", organization, pattern, role, limited
        )
        self._record(
            actor,
            "pull_token.create",
            f"token:{token_id}",
            client,
            {"organization": organization, "role": role},
        )
        return CreatedPullToken(record, f"{PULL_TOKEN_PREFIX}{token_id}_{secret}")

    async def pull_tokens(
        self, actor: Principal, organization: str
    ) -> list[PullTokenRecord]:
        await self.require_owner(actor, organization)
        return await self._accounts.pull_tokens.query(organization)

    async def revoke_pull_token(
        self, actor: Principal, organization: str, token_id: str, *, client: str
    ) -> None:
        await self.require_owner(actor, organization)
        record = await self._accounts.pull_tokens.get(token_id)
        if record is None or record.organization != organization:
            raise NotFound(f"no pull token {token_id[:40]!r} in {organization!r}")
        if not await self._accounts.pull_tokens.revoke(token_id, time.time()):
            return  # already revoked: nothing changed, nothing to record
        self._access.forget(f"token:{token_id}")
        self._record(actor, "pull_token.revoke", f"token:{token_id}", client)

    # -- CI identities (OIDC federation) ---------------------------------------------

    async def create_oidc_identity(
        self,
        actor: Principal,
        *,
        name: str,
        issuer: str,
        audience: str,
        subject: str,
        claims: dict[str, str] | None,
        client: str,
    ) -> None:
        self.require_admin(actor)
        _check_name("identity", name)
        if (
            not issuer.startswith(("https://", "http://"))
            or not audience
            or not subject
        ):
            raise InvalidRequest(
                "an identity needs an issuer URL, an audience and a subject"
            )
        record = OidcIdentityRecord(
            name, issuer.rstrip("/"), audience, subject, dict(claims or {}), time.time()
        )
        if not await self._accounts.oidc.create(record):
            raise Conflict(f"identity {name!r} exists")
        self._record(
            actor,
            "oidc.create",
            f"oidc:{name}",
            client,
            {"issuer": issuer, "subject": subject},
        )

    async def oidc_identities(self, actor: Principal) -> list[OidcIdentityRecord]:
        self.require_admin(actor)
        return await self._accounts.oidc.all()

    async def delete_oidc_identity(
        self, actor: Principal, name: str, *, client: str
    ) -> None:
        self.require_admin(actor)
        if not await self._accounts.oidc.delete(name):
            raise NotFound(f"no identity {name!r}")
        self._access.forget(f"oidc:{name}")
        self._record(actor, "oidc.delete", f"oidc:{name}", client)

    # -- repositories ----------------------------------------------------------------

    async def repository_settings(
        self, actor: Principal, repository: str
    ) -> RepositorySettingsRecord:
        name = RepositoryName.parse(repository)
        await self.require_owner(actor, name.namespace)
        policy = await self._access.repository_policy(name.value)
        record = await self._accounts.repository_settings.get(name.value)
        return RepositorySettingsRecord(
            name.value,
            "public" if policy.public else "private",
            record.starter_tags if record else None,
            record.updated_at if record else 0.0,
        )

    async def set_repository(
        self,
        actor: Principal,
        repository: str,
        *,
        visibility: str | None,
        starter_tags: list[str] | None,
        client: str,
    ) -> RepositorySettingsRecord:
        current = await self.repository_settings(actor, repository)
        if visibility not in (None, "public", "private"):
            raise InvalidRequest("visibility must be public or private")
        record = RepositorySettingsRecord(
            current.repository,
            visibility or current.visibility,
            _check_tags(starter_tags)
            if starter_tags is not None
            else current.starter_tags,
            time.time(),
        )
        await self._accounts.repository_settings.put(record)
        self._record(
            actor,
            "repository.settings",
            record.repository,
            client,
            {
                "visibility": record.visibility,
                "starter_tags": list(record.starter_tags or ()) or None,
            },
        )
        return record

    # -- audit -----------------------------------------------------------------------

    async def audit_events(
        self,
        actor: Principal,
        *,
        after_id: int = 0,
        limit: int = 100,
        subject: str | None = None,
    ) -> list[AuditEvent]:
        self.require_admin(actor)
        await self._audit.flush()
        return await self._accounts.audit.query(
            after_id=after_id, limit=max(1, min(limit, 1000)), actor=subject
        )
