"""The token endpoint: ``GET /token`` (Docker) and ``POST /token`` (OAuth2), and JWKS.

An unknown or forbidden repository in a scope is simply left out of the token's access,
so the answer never tells whether a private repository exists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cargohold.api.state import client_address, services, settings
from cargohold.auth.basic import MalformedCredentials, parse_basic
from cargohold.auth.policy import ANONYMOUS, Principal
from cargohold.auth.scopes import parse_scopes
from cargohold.oci.errors import RegistryError, Unauthorized

_MAX_FORM_BYTES = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenRequestInvalid(RegistryError):
    code = "UNSUPPORTED"
    message = "unsupported token request"
    status = 400


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return parse_basic(value)
    except MalformedCredentials as exc:
        raise Unauthorized(str(exc)) from None


async def _respond(
    request: Request,
    principal: Principal,
    scopes: list[str],
    *,
    service: str | None,
    refresh: bool | str,
    oauth: bool,
) -> Response:
    auth = services(request).auth
    expected = settings(request).auth.service
    if service is not None and service != expected:
        raise TokenRequestInvalid(
            f"unknown service {service[:100]!r}; use {expected!r}"
        )
    access = await auth.access.grant(principal, parse_scopes(scopes))
    token, ttl = auth.issuer.issue(principal, access)
    body: dict[str, object] = {
        "token": token,
        "access_token": token,
        "expires_in": ttl,
        "issued_at": datetime.now(UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
    }
    if oauth:
        body["scope"] = " ".join(scopes)
    if isinstance(refresh, str):
        body["refresh_token"] = refresh  # the refresh grant: the same token stays valid
    elif refresh and not principal.anonymous:
        body["refresh_token"] = await auth.authenticator.issue_refresh_token(principal)
    return JSONResponse(body, headers=_NO_STORE)


async def get_token(request: Request) -> Response:
    """Docker token auth: Basic credentials or none (anonymous)."""
    params = request.query_params
    credentials = _basic(request)
    principal = ANONYMOUS
    if credentials is not None:
        principal = await services(request).auth.authenticator.login(
            *credentials, client=client_address(request)
        )
    return await _respond(
        request,
        principal,
        params.getlist("scope"),
        service=params.get("service"),
        refresh=params.get("offline_token", "").lower() == "true",
        oauth=False,
    )


async def _form(request: Request) -> dict[str, str]:
    """The URL-encoded form of a token request (small: capped at 16 KiB)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise TokenRequestInvalid("token request body too large")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenRequestInvalid("malformed form body") from exc
    return dict(pairs)


async def post_token(request: Request) -> Response:
    """OAuth2 token endpoint: ``password`` and ``refresh_token`` grants."""
    fields = await _form(request)
    authenticator = services(request).auth.authenticator
    grant_type = fields.get("grant_type")
    refresh: bool | str
    if grant_type == "password":
        principal = await authenticator.login(
            fields.get("username", ""),
            fields.get("password", ""),
            client=client_address(request),
        )
        refresh = fields.get("access_type") == "offline"
    elif grant_type == "refresh_token":
        refresh = fields.get("refresh_token", "")
        principal = await authenticator.refresh(refresh, client=client_address(request))
    else:
        raise TokenRequestInvalid("grant_type must be password or refresh_token")
    scopes = fields.get("scope", "").split()
    return await _respond(
        request,
        principal,
        scopes,
        service=fields.get("service"),
        refresh=refresh,
        oauth=True,
    )


async def jwks(request: Request) -> Response:
    """The public keys tokens are signed with (verification by third parties)."""
    auth = services(request).auth
    return JSONResponse(
        auth.keyring.current().jwks(), headers={"Cache-Control": "max-age=300"}
    )


routes = [
    Route("/token", get_token, methods=["GET"], name="token"),
    Route("/token", post_token, methods=["POST"]),
    Route("/token/jwks", jwks, methods=["GET"], name="jwks"),
]
