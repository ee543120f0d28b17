"""``/oidc-identities``: CI identities (trusted OIDC issuers and subjects)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import json_fields
from cargohold.api.management.common import admin, client, no_content, reply

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal


async def list_identities(request: Request, actor: Principal) -> Response:
    records = await admin(request).oidc_identities(actor)
    return reply([views.oidc_identity(record) for record in records])


async def create_identity(request: Request, actor: Principal) -> Response:
    body = await json_fields(request, "name", "issuer", "audience", "subject", "claims")
    name = body.text("name")
    await admin(request).create_oidc_identity(
        actor,
        name=name,
        issuer=body.text("issuer", max_length=255),
        audience=body.text("audience", max_length=255),
        subject=body.text("subject", max_length=255),
        claims=body.labels("claims"),
        client=client(request),
    )
    return reply({"name": name}, status=201)


async def delete_identity(request: Request, actor: Principal) -> Response:
    await admin(request).delete_oidc_identity(
        actor, request.path_params["name"], client=client(request)
    )
    return no_content()
