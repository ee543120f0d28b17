"""``/users``: list, create and delete users; set a password or email. ``/me``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import json_fields
from cargohold.api.management.common import admin, client, no_content, reply
from cargohold.api.state import services
from cargohold.registry.profile import profile

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal


async def list_users(request: Request, actor: Principal) -> Response:
    return reply([views.user(record) for record in await admin(request).users(actor)])


async def create_user(request: Request, actor: Principal) -> Response:
    body = await json_fields(request, "name", "password", "admin")
    name, is_admin = body.text("name"), body.flag("admin", default=False)
    await admin(request).create_user(
        actor, name, body.text("password"), is_admin=is_admin, client=client(request)
    )
    return reply({"name": name, "admin": is_admin}, status=201)


async def delete_user(request: Request, actor: Principal) -> Response:
    await admin(request).delete_user(
        actor, request.path_params["user"], client=client(request)
    )
    return no_content()


async def set_password(request: Request, actor: Principal) -> Response:
    password = (await json_fields(request, "password")).text("password")
    await admin(request).set_password(
        actor, request.path_params["user"], password, client=client(request)
    )
    return no_content()


async def set_email(request: Request, actor: Principal) -> Response:
    body = await json_fields(request, "email")
    email = body.optional_text("email", max_length=320)
    await admin(request).set_email(
        actor, request.path_params["user"], email, client=client(request)
    )
    return reply({"name": request.path_params["user"], "email": email})


async def whoami(request: Request, actor: Principal) -> Response:
    found = await profile(services(request).auth.accounts, actor)
    return reply(
        {
            "identity": found.identity,
            "kind": found.kind,
            "admin": found.admin,
            "email": found.email,
            "organizations": list(found.organizations),
        }
    )
