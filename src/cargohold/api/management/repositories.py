"""``/repositories/{name}/settings``: visibility, and starter tags anyone may pull."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import json_fields
from cargohold.api.management.common import admin, client, reply

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal

VISIBILITIES = ("public", "private")


async def get_settings(request: Request, actor: Principal) -> Response:
    record = await admin(request).repository_settings(
        actor, request.path_params["name"]
    )
    return reply(views.repository_settings(record))


async def put_settings(request: Request, actor: Principal) -> Response:
    body = await json_fields(request, "visibility", "starter_tags")
    record = await admin(request).set_repository(
        actor,
        request.path_params["name"],
        visibility=body.optional_choice("visibility", VISIBILITIES),
        starter_tags=body.patterns("starter_tags"),
        client=client(request),
    )
    return reply(views.repository_settings(record))
