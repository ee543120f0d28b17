"""``/orgs/{org}/grants``: entitlements, a role on repositories matching a glob."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import json_fields
from cargohold.api.management.common import admin, client, no_content, reply
from cargohold.auth.policy import ROLES, Principal

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


async def list_grants(request: Request, actor: Principal) -> Response:
    records = await admin(request).grants(actor, request.path_params["org"])
    return reply([views.grant(record) for record in records])


async def add_grant(request: Request, actor: Principal) -> Response:
    body = await json_fields(request, "principal", "repository", "role", "tags")
    record = await admin(request).add_grant(
        actor,
        principal=body.text("principal", max_length=200),
        organization=request.path_params["org"],
        repository=body.text("repository", max_length=255),
        role=body.choice("role", ROLES),
        tags=body.patterns("tags"),
        client=client(request),
    )
    return reply(views.grant(record), status=201)


async def remove_grant(request: Request, actor: Principal) -> Response:
    await admin(request).remove_grant(
        actor,
        request.path_params["org"],
        request.path_params["grant_id"],
        client=client(request),
    )
    return no_content()
