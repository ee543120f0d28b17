"""``AccessService``: what a principal may do.

Answers are data-driven decisions. It feeds the pure ``auth.policy.decide`` with grants
and repository settings from the account store, and checks that a token's principal
still exists (revocation). What a tag-limited caller may reach inside a repository is
decided by ``registry.limits``, in the services that touch the content.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Iterable

from cargohold.auth import policy
from cargohold.auth.policy import ROLE_ACTIONS, Grant, Principal, RepositoryPolicy
from cargohold.auth.scopes import (
    CATALOG,
    REGISTRY,
    REPOSITORY,
    Access,
    Scope,
    merge_scopes,
)
from cargohold.metadata.accounts import AccountStore
from cargohold.oci.errors import NameInvalid
from cargohold.oci.names import RepositoryName
from cargohold.registry.limits import RepositoryAccess
from cargohold.settings import AuthSettings

# Cache size beyond which the cache is emptied, bounding memory.
MAX_CACHED_SUBJECTS = 50_000


class AccessService:
    def __init__(
        self,
        accounts: AccountStore,
        settings: AuthSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = accounts
        self._clock = clock  # wall time, for expiry; injected so tests can move it
        self._settings = settings
        self._active: dict[str, tuple[bool, float]] = {}

    async def repository_policy(self, name: str) -> RepositoryPolicy:
        record = await self._accounts.repository_settings.get(name)
        return self.policy_of(
            name,
            record.visibility if record else None,
            record.starter_tags if record else None,
        )

    def policy_of(
        self, name: str, visibility: str | None, starter_tags: tuple[str, ...] | None
    ) -> RepositoryPolicy:
        """A repository's policy from its stored settings (None: the defaults)."""
        visibility = visibility or self._settings.default_visibility
        starter = (
            starter_tags if starter_tags is not None else self._settings.starter_tags
        )
        return RepositoryPolicy(name, visibility == "public", starter)

    def public_visibilities(self) -> tuple[str | None, ...]:
        """The stored visibilities of public repositories (None: no settings row,
        public when the default is): all that a viewer without grants may list."""
        if self._settings.default_visibility == "public":
            return ("public", None)
        return ("public",)

    def pullable_policies(
        self,
        principal: Principal,
        grants: list[Grant],
        policies: Iterable[RepositoryPolicy],
    ) -> list[RepositoryPolicy]:
        """Those of ``policies`` ``principal`` (holding ``grants``, from ``grants()``)
        may pull from: catalog filtering of many repositories without a query each."""
        if principal.is_admin:
            return list(policies)
        # ``policy.decide`` for PULL, compiled once for many repositories: every role
        # pulls, so a repository is pullable when it is public (its starter tags) or
        # a grant's glob covers its name.
        globs = [
            g.repository for g in grants if policy.PULL in ROLE_ACTIONS.get(g.role, ())
        ]
        covered = (
            re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs)).match
            if globs
            else None
        )
        return [
            p for p in policies if p.public or (covered is not None and covered(p.name))
        ]

    async def grants(self, principal: Principal) -> list[Grant]:
        if principal.anonymous:
            return []
        records = await self._accounts.grants.for_principal(principal.subject)
        return [Grant(r.repository, r.role, r.tags) for r in records]

    async def grant(
        self, principal: Principal, scopes: Iterable[Scope]
    ) -> list[Access]:
        """The access entries a token for ``scopes`` carries: one per resource.

        Nothing asked, nothing given. A resource asked for several times (clients send
        ``scope`` more than once) is decided once, for the union of the actions.
        """
        grants = await self.grants(principal)
        granted: list[Access] = []
        for scope in merge_scopes(scopes):
            if scope.type == REGISTRY and scope.name == CATALOG:
                granted.append(Access(REGISTRY, CATALOG, ("*",)))
                continue
            if scope.type != REPOSITORY:
                continue
            try:
                name = RepositoryName.parse(scope.name).value
            except NameInvalid:
                continue
            decision = policy.decide(
                principal, grants, await self.repository_policy(name), scope.actions
            )
            if not decision.empty:
                granted.append(Access.granting(REPOSITORY, name, decision.limits))
        return granted

    async def pull_access(
        self, principal: Principal, repository: RepositoryName
    ) -> RepositoryAccess | None:
        """What ``principal`` may read in ``repository`` (the limits a pull token for
        it would carry), or None if nothing: for reads that follow the image (its
        SBOM, vulnerabilities, signatures, tag history) outside the /v2 API."""
        decision = policy.decide(
            principal,
            await self.grants(principal),
            await self.repository_policy(repository.value),
            frozenset({policy.PULL}),
        )
        if policy.PULL not in decision.limits:
            return None
        return RepositoryAccess(repository, principal, decision.limits)

    async def pullable(self, principal: Principal, names: list[str]) -> list[str]:
        """Those of ``names`` the principal may pull from (catalog filtering)."""
        if principal.is_admin:
            return names
        grants = await self.grants(principal)
        wanted = frozenset({policy.PULL})
        return [
            name
            for name in names
            if not policy.decide(
                principal, grants, await self.repository_policy(name), wanted
            ).empty
        ]

    async def is_active(self, principal: Principal) -> bool:
        """Whether the principal behind a token still exists and is not revoked."""
        if principal.anonymous:
            return True
        now = time.monotonic()
        cached = self._active.get(principal.subject)
        if cached is not None and cached[1] > now:
            return cached[0]
        active = await self._lookup_active(principal.subject)
        self._active[principal.subject] = (
            active,
            now + self._settings.revocation_check_seconds,
        )
        if len(self._active) > MAX_CACHED_SUBJECTS:
            self._active.clear()
        return active

    def forget(self, subject: str) -> None:
        """Drop a cached answer at once (this process made the change)."""
        self._active.pop(subject, None)

    async def _lookup_active(self, subject: str) -> bool:
        kind, _, name = subject.partition(":")
        if kind == "user":
            user = await self._accounts.users.get(name)
            return user is not None and not user.disabled
        if kind == "token":
            token = await self._accounts.pull_tokens.get(name)
            return (
                token is not None
                and token.revoked_at is None
                and (token.expires_at is None or token.expires_at > self._clock())
            )
        if kind == "oidc":
            return await self._accounts.oidc.get(name) is not None
        return False
