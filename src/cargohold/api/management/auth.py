"""Who is calling the management API: HTTP Basic or a registry bearer token.

Basic takes what ``/token`` takes (a user's password, a pull token, a CI job's ID token)
and goes through the same throttle and audit. A bearer token is a registry JWT from
``/token``; its principal must still be active. With auth mode ``none`` there are no
identities, so every management request is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from cargohold.api.management.common import client
from cargohold.api.state import services, settings
from cargohold.auth.basic import MalformedCredentials, parse_basic
from cargohold.auth.policy import ANONYMOUS, Principal
from cargohold.auth.tokens import InvalidToken
from cargohold.oci.errors import Denied, Unauthorized

Authenticate = Callable[[Request], Awaitable[Principal]]

CHALLENGE = {"WWW-Authenticate": 'Basic realm="cargohold"'}


def _refuse(detail: str) -> Unauthorized:
    return Unauthorized(detail, headers=CHALLENGE)


def _basic(value: str) -> tuple[str, str]:
    try:
        return parse_basic(value)
    except MalformedCredentials as exc:
        raise _refuse(str(exc)) from None


async def from_credentials(request: Request) -> Principal:
    """The authenticated caller.

    Raises:
        Denied: auth mode is ``none``.
        Unauthorized: no, malformed or wrong credentials (with a Basic challenge).
        TooManyRequests: too many failed logins.
    """
    if settings(request).auth.mode == "none":
        raise Denied(
            "the management API is off because auth mode is 'none': with no identities "
            "there is nothing it could manage safely. Switch to auth mode 'token', or "
            "use the `cargohold` admin commands on the data directory."
        )
    auth = services(request).auth
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    match scheme.lower():
        case "basic":
            username, password = _basic(value)
            try:
                return await auth.authenticator.login(
                    username, password, client=client(request)
                )
            except Unauthorized as exc:
                raise _refuse(str(exc)) from None
        case "bearer":
            try:
                principal = auth.verifier.verify(value.strip()).principal
            except InvalidToken:
                raise _refuse("invalid or expired bearer token") from None
            if principal.anonymous or not await auth.access.is_active(principal):
                raise _refuse("the bearer token does not name an active identity")
            return principal
        case _:
            raise _refuse("log in with HTTP Basic or a bearer token from /token")


def or_anonymous(authenticate: Authenticate) -> Authenticate:
    """``authenticate``, but a request without credentials acts as the anonymous
    principal: for reads that follow an image's tier (anonymous callers may read
    what they may pull). With auth mode ``none``, refused as every operation is."""

    async def either(request: Request) -> Principal:
        if "authorization" in request.headers or settings(request).auth.mode == "none":
            return await authenticate(request)
        return ANONYMOUS

    return either


def as_principal(principal: Principal) -> Authenticate:
    """Every request acts as ``principal``, without credentials (local admin CLI)."""

    async def fixed(_request: Request) -> Principal:
        return principal

    return fixed
