"""What every management handler needs: the admin service, the caller, replies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response

from cargohold.api.state import client_address, services

if TYPE_CHECKING:
    from starlette.requests import Request

    from cargohold.registry.admin import AdminService

# Answers may carry secrets (a new pull token) or account data: never cache them.
_NO_STORE = {"Cache-Control": "no-store"}


def admin(request: Request) -> AdminService:
    return services(request).auth.admin


client = client_address


def reply(body: object, *, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


def no_content() -> Response:
    return Response(status_code=204, headers=_NO_STORE)
