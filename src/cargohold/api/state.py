"""What a handler reads from the app: its services, settings, the caller's address.

The composition root (``api/app.py``) puts ``services`` and ``settings`` on
``app.state``; handlers reach them only through these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request

    from cargohold.registry.services import Services
    from cargohold.settings import Settings


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def client_address(request: Request) -> str:
    """The caller's address, as throttling and the audit log record it."""
    peer = request.scope.get("client")  # (host, port), or None: not an Address object
    return str(peer[0]) if peer else ""
