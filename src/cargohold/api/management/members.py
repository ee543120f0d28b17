"""``/orgs/{org}/members/{user}``: a user's role on all repositories of an org."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import json_fields
from cargohold.api.management.common import admin, client, no_content, reply
from cargohold.auth.policy import ROLES, Principal

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


async def set_member(request: Request, actor: Principal) -> Response:
    # The role is checked here too: AdminService.set_member drops the current role
    # before it validates the new one.
    role = (await json_fields(request, "role")).choice("role", ROLES)
    record = await admin(request).set_member(
        actor,
        request.path_params["org"],
        request.path_params["user"],
        role,
        client=client(request),
    )
    return reply(views.grant(record))


async def remove_member(request: Request, actor: Principal) -> Response:
    await admin(request).remove_member(
        actor,
        request.path_params["org"],
        request.path_params["user"],
        client=client(request),
    )
    return no_content()
