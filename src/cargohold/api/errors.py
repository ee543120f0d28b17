"""Rendering every error as OCI error JSON (spec.md, "Error Codes")."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from cargohold.api.access import challenge_for
from cargohold.oci.errors import MethodNotAllowed, RegistryError, SizeInvalid
from cargohold.registry.limits import LoginRequired

log = structlog.get_logger(__name__)


class RouteUnknown(RegistryError):
    code = "NOT_FOUND"
    message = "no such endpoint"
    status = 404


class InternalError(RegistryError):
    code = "UNKNOWN"
    message = "internal server error; the registry logged the cause"
    status = 500


def render(error: RegistryError) -> Response:
    return JSONResponse(
        error.to_json(), status_code=error.status, headers=error.headers
    )


async def registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)  # noqa: S101 - registered for this type only
    if isinstance(exc, LoginRequired) and "WWW-Authenticate" not in exc.headers:
        # A service refused an anonymous (or under-scoped) caller: tell the client
        # where to get the token it needs, as every other 401 does.
        exc.headers["WWW-Authenticate"] = challenge_for(request, exc.scope, exc.error)
    return render(exc)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101
    if exc.status_code == 405:  # noqa: PLR2004
        return render(MethodNotAllowed(headers=dict(exc.headers or {})))
    return render(RouteUnknown())


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """The client hung up before its body was complete: not a server error.

    The service has already rolled back what the body was for (an upload chunk is cut
    back to where it started). Nobody reads this answer; it exists so that nothing
    logs an error or answers 500.
    """
    assert isinstance(exc, ClientDisconnect)  # noqa: S101 - registered for this type
    log.info(
        "client disconnected before its request body was complete",
        method=request.method,
        path=request.url.path,
    )
    return render(SizeInvalid("the connection closed before the body was complete"))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception(  # noqa: LOG004 - Starlette calls this inside its except block
        "unhandled error", path=request.url.path, error=repr(exc)
    )
    return render(InternalError())
