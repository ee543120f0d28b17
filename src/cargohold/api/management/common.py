"""What every management handler needs: the admin service, the caller, replies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from starlette.requests import Request

    from cargohold.registry.admin import AdminService
    from cargohold.registry.services import Services

# Answers may carry secrets (a new pull token) or account data: never cache them.
_NO_STORE = {"Cache-Control": "no-store"}


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def admin(request: Request) -> AdminService:
    return services(request).auth.admin


def client(request: Request) -> str:
    """The caller's address, as the audit log records it."""
    return request.client.host if request.client else ""


def reply(body: object, *, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers=_NO_STORE)


def no_content() -> Response:
    return Response(status_code=204, headers=_NO_STORE)
