"""``/orgs``: list, create and delete organizations; their security contact."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management.body import json_fields
from cargohold.api.management.common import admin, client, no_content, reply

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal


async def list_organizations(request: Request, actor: Principal) -> Response:
    found = await admin(request).organization_contacts(actor)
    return reply(
        [{"name": name, "security_contact": contact} for name, contact in found]
    )


async def create_organization(request: Request, actor: Principal) -> Response:
    name = (await json_fields(request, "name")).text("name")
    await admin(request).create_organization(actor, name, client=client(request))
    return reply({"name": name}, status=201)


async def delete_organization(request: Request, actor: Principal) -> Response:
    await admin(request).delete_organization(
        actor, request.path_params["org"], client=client(request)
    )
    return no_content()


async def set_contact(request: Request, actor: Principal) -> Response:
    body = await json_fields(request, "security_contact")
    address = body.optional_text("security_contact", max_length=320)
    org = request.path_params["org"]
    await admin(request).set_security_contact(
        actor, org, address, client=client(request)
    )
    return reply({"name": org, "security_contact": address})
