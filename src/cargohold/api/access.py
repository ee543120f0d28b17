"""Authorizing ``/v2`` requests with bearer tokens (Docker token auth).

``authorize`` checks the token for the repository and action and returns a ``Permit``; a
``Permit`` then checks tag-limited access (anonymous pulls of public starter tags, or an
entitlement limited to some tags) against the tag or digest actually requested. Anything
not allowed gets the same answer whether or not it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from cargohold.api.state import services, settings
from cargohold.auth.policy import ANONYMOUS, Principal, tag_allowed
from cargohold.auth.scopes import REPOSITORY, challenge, repository_scope
from cargohold.auth.tokens import InvalidToken, VerifiedToken
from cargohold.oci.digest import Digest
from cargohold.oci.errors import Denied, Unauthorized
from cargohold.oci.names import RepositoryName
from cargohold.registry.access import AccessService

_BEARER = "bearer "


def realm(request: Request) -> str:
    configured = settings(request).auth.realm
    if configured:
        return configured
    return f"{request.url.scheme}://{request.url.netloc}/token"


def unauthorized(
    request: Request,
    scope: str | None,
    *,
    error: str | None = None,
    detail: object = None,
) -> Unauthorized:
    header = challenge(
        realm(request), settings(request).auth.service, scope=scope, error=error
    )
    return Unauthorized(detail, headers={"WWW-Authenticate": header})


@dataclass(frozen=True, slots=True)
class Permit:
    """What the caller may do in one repository for this request."""

    repository: str
    principal: Principal
    tags: tuple[str, ...] | None  # None: every tag and digest
    access: AccessService | None
    scope: str

    def _refuse(self, request: Request, what: str) -> Exception:
        if self.principal.anonymous:
            return unauthorized(request, self.scope, detail=f"log in to pull {what}")
        return Denied(f"your entitlement does not cover {what}")

    def require_tag(self, request: Request, tag: str) -> None:
        if not tag_allowed(tag, self.tags):
            raise self._refuse(request, f"tag {tag!r}")

    async def require_manifest(self, request: Request, digest: Digest) -> None:
        if self.tags is None or self.access is None:
            return
        manifests, _ = await self.access.content_view(self.repository, self.tags)
        if str(digest) not in manifests:
            raise self._refuse(request, "this digest")

    async def require_blob(self, request: Request, digest: Digest) -> None:
        if self.tags is None or self.access is None:
            return
        _, blobs = await self.access.content_view(self.repository, self.tags)
        if str(digest) not in blobs:
            raise self._refuse(request, "this blob")

    def visible_tags(self, tags: list[str]) -> list[str]:
        return (
            tags
            if self.tags is None
            else [t for t in tags if tag_allowed(t, self.tags)]
        )


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


async def authorize(request: Request, repo: RepositoryName, action: str) -> Permit:
    """The caller's permit for ``action`` on ``repo``.

    Raises ``Unauthorized`` otherwise.
    """
    needed = ("pull", "push") if action == "push" else (action,)
    scope = repository_scope(repo.value, needed)
    if settings(request).auth.mode == "none":
        return Permit(repo.value, ANONYMOUS, None, None, scope)
    token = await authenticate(request, scope)
    assert token is not None  # noqa: S101 - auth is on
    entry = token.find(REPOSITORY, repo.value)
    if entry is None or action not in entry.actions:
        raise unauthorized(
            request,
            scope,
            error="insufficient_scope",
            detail=[{"Type": REPOSITORY, "Name": repo.value, "Action": action}],
        )
    return Permit(
        repo.value, token.principal, entry.tags, services(request).auth.access, scope
    )
