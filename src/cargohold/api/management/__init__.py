"""The JSON management API under ``/api/v1`` (described by ``/api/v1/openapi.json``).

Handlers are thin: JSON in (``body``), one ``AdminService`` call, JSON out (``views``).
Who may do what is decided by the domain layer, never here. ``routes`` is what the
registry app mounts; ``local.local_app`` serves the same handlers to the admin CLI.
"""

from __future__ import annotations

from starlette.routing import Mount

from cargohold.api.management.routes import PREFIX, build_routes

routes = [Mount(PREFIX, routes=build_routes(), name="management")]

__all__ = ["PREFIX", "build_routes", "routes"]
