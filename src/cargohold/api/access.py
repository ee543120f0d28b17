"""Authenticating ``/v2`` requests with bearer tokens (Docker token auth).

``authorize`` checks the token grants the action on the repository (else ``401`` with a
challenge naming the scope needed) and turns it into a ``RepositoryAccess``, the domain
value every content service takes and checks (tag limits live in ``registry.limits``, so
no handler can forget them). ``challenge_for`` gives the challenge a service's
``LoginRequired`` is answered with.
"""

from __future__ import annotations

from starlette.requests import Request

from cargohold.api.state import services, settings
from cargohold.auth.policy import OPEN, Principal
from cargohold.auth.scopes import (
    CATALOG,
    REGISTRY,
    REPOSITORY,
    challenge,
    repository_scope,
)
from cargohold.auth.tokens import InvalidToken, VerifiedToken
from cargohold.oci.errors import Unauthorized
from cargohold.oci.names import RepositoryName
from cargohold.registry.limits import RepositoryAccess

_BEARER = "bearer "


def realm(request: Request) -> str:
    configured = settings(request).auth.realm
    if configured:
        return configured
    return f"{request.url.scheme}://{request.url.netloc}/token"


def challenge_for(request: Request, scope: str | None, error: str | None) -> str:
    """The ``WWW-Authenticate`` value asking for a token for ``scope``."""
    return challenge(
        realm(request), settings(request).auth.service, scope=scope, error=error
    )


def unauthorized(
    request: Request,
    scope: str | None,
    *,
    error: str | None = None,
    detail: object = None,
) -> Unauthorized:
    header = challenge_for(request, scope, error)
    return Unauthorized(detail, headers={"WWW-Authenticate": header})


async def authenticate(
    request: Request, scope: str | None = None
) -> VerifiedToken | None:
    """The verified bearer token of the request; ``None`` when auth is off.

    Raises ``Unauthorized`` with a challenge (for ``scope``) when there is no valid
    token.
    """
    if settings(request).auth.mode == "none":
        return None
    header = request.headers.get("authorization", "")
    if not header[: len(_BEARER)].lower() == _BEARER:
        raise unauthorized(request, scope)
    auth = services(request).auth
    try:
        token = auth.verifier.verify(header[len(_BEARER) :].strip())
    except InvalidToken:
        raise unauthorized(request, scope, error="invalid_token") from None
    if not await auth.access.is_active(token.principal):
        raise unauthorized(request, scope, error="invalid_token")
    return token


async def authorize(
    request: Request, repo: RepositoryName, action: str
) -> RepositoryAccess:
    """The caller's access to ``repo``, which must include ``action``.

    Raises ``Unauthorized`` otherwise.
    """
    needed = ("pull", "push") if action == "push" else (action,)
    scope = repository_scope(repo.value, needed)
    if settings(request).auth.mode == "none":
        return RepositoryAccess.open(repo)
    token = await authenticate(request, scope)
    assert token is not None  # noqa: S101 - auth is on
    access = _access(token, repo)
    if action not in access.actions:
        raise unauthorized(
            request,
            scope,
            error="insufficient_scope",
            detail=[{"Type": REPOSITORY, "Name": repo.value, "Action": action}],
        )
    return access


async def catalog_viewer(request: Request) -> Principal:
    """Who lists the catalog: the token must carry ``registry:catalog:*``."""
    scope = f"{REGISTRY}:{CATALOG}:*"
    token = await authenticate(request, scope)
    if token is None:
        return OPEN
    if token.find(REGISTRY, CATALOG) is None:
        raise unauthorized(request, scope, error="insufficient_scope")
    return token.principal


async def access_to(request: Request, repo: RepositoryName) -> RepositoryAccess:
    """Whatever the caller's token grants on ``repo`` (maybe nothing); never refuses.

    For a second repository in one request (a mount's source), after ``authorize``.
    """
    token = await authenticate(request)
    return RepositoryAccess.open(repo) if token is None else _access(token, repo)


def _access(token: VerifiedToken, repo: RepositoryName) -> RepositoryAccess:
    entry = token.find(REPOSITORY, repo.value)
    if entry is None:
        return RepositoryAccess(repo, token.principal, {})
    return RepositoryAccess(repo, token.principal, entry.limits())
