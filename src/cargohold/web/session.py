"""Who is looking at a page (the session cookie), and the forms' CSRF tokens.

Signed in: the session's own token (kept server-side) must come back in every form.
Signing in (no session yet): a double-submit token, a random cookie (SameSite=Strict,
HttpOnly) that the form must repeat; a cross-site page can neither read nor set it.
Both are compared in constant time; a POST whose ``Origin`` names another origin is
refused before either.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cargohold.api.state import services, settings
from cargohold.auth.policy import ANONYMOUS, OPEN, Principal
from cargohold.registry.clients import parse_networks, trusted_peer
from cargohold.registry.web_sessions import SignedIn, same_secret

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

SESSION_COOKIE = "cargohold_session"
CSRF_COOKIE = "cargohold_signin"
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    signed_in: SignedIn | None
    # False with auth mode "none": there is nobody to sign in as.
    can_sign_in: bool


async def viewer(request: Request) -> Viewer:
    """The page's viewer: the session's user, else anonymous (everyone, as an
    administrator would, when auth is off)."""
    if settings(request).auth.mode == "none":
        return Viewer(OPEN, None, can_sign_in=False)
    found = await services(request).web_sessions.current(
        request.cookies.get(SESSION_COOKIE)
    )
    return Viewer(found.principal if found else ANONYMOUS, found, can_sign_in=True)


def over_tls(request: Request) -> bool:
    """Whether the browser reached us over TLS (directly, or through a trusted proxy
    that says so): the cookies are then ``Secure``."""
    if request.url.scheme == "https":
        return True
    peer = request.scope.get("client")
    trusted = parse_networks(settings(request).server.trusted_proxies)
    return (
        peer is not None
        and trusted_peer(str(peer[0]), trusted)
        and request.headers.get("x-forwarded-proto", "").strip().lower() == "https"
    )


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int,
    samesite: str = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=over_tls(request),
        samesite=samesite,  # type: ignore[arg-type]
    )


def new_signin_token() -> str:
    return secrets.token_urlsafe(32)


def same_origin(request: Request) -> bool:
    """A form POST from our own pages: ``Origin`` (when the browser sends one) is
    this server's."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}" or (
        over_tls(request) and origin == f"https://{request.url.netloc}"
    )


def token_matches(given: object, expected: str | None) -> bool:
    return (
        isinstance(given, str)
        and bool(expected)
        and expected is not None
        and same_secret(given, expected)
    )
