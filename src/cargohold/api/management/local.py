"""The management API on its own, acting as one fixed principal: the local admin CLI.

Whoever can open the data directory can already change anything in it, so the local
commands authenticate no one; running the same handlers in-process keeps their checks,
answers and audit events identical to a remote call's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from cargohold.api import errors
from cargohold.api.management.auth import as_principal
from cargohold.api.management.routes import PREFIX, build_routes
from cargohold.oci.errors import RegistryError

if TYPE_CHECKING:
    from cargohold.auth.policy import Principal
    from cargohold.registry.services import Services
    from cargohold.settings import Settings


def local_app(
    settings: Settings, services: Services, principal: Principal
) -> Starlette:
    app = Starlette(
        routes=[Mount(PREFIX, routes=build_routes(as_principal(principal)))],
        exception_handlers={
            RegistryError: errors.registry_error,
            HTTPException: errors.http_error,
        },
    )
    app.state.settings = settings
    app.state.services = services
    return app
