"""Who the caller is, as the registry knows them: ``GET /api/v1/me``.

Any authenticated identity may read its own profile (a user, a pull token, a CI
identity); it is how a user reads back the email address advisories reach them at.
"""

from __future__ import annotations

from dataclasses import dataclass

from cargohold.auth.policy import Principal
from cargohold.metadata.accounts import AccountStore
from cargohold.oci.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Profile:
    identity: str  # the principal's subject, as pull events and notices name it
    kind: str
    admin: bool
    email: str | None  # users only: where advisories reach them
    organizations: tuple[str, ...]  # where grants (or the token) place them


async def profile(accounts: AccountStore, actor: Principal) -> Profile:
    """``actor``'s profile; anonymous callers (and auth mode none) have none."""
    if actor.kind not in {"user", "token", "oidc"}:
        raise Unauthorized("sign in to see your profile")
    email = None
    organizations = {
        grant.organization
        for grant in await accounts.grants.for_principal(actor.subject)
    }
    name = actor.subject.split(":", 1)[1]
    if actor.kind == "user":
        user = await accounts.users.get(name)
        email = user.email if user is not None else None
    elif actor.kind == "token":
        token = await accounts.pull_tokens.get(name)
        if token is not None:
            organizations.add(token.organization)
    return Profile(
        actor.subject, actor.kind, actor.is_admin, email, tuple(sorted(organizations))
    )
