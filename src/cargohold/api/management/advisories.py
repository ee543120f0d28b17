"""``/advisories``: publish, update and read advisories; who they affect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import json_fields
from cargohold.api.management.common import client, reply
from cargohold.api.state import services
from cargohold.registry.advisory_document import FIELDS

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal


def _id(request: Request) -> str:
    return str(request.path_params["advisory"])


async def list_advisories(request: Request, actor: Principal) -> Response:
    records = await services(request).advisories.visible(actor)
    return reply({"advisories": [views.advisory(r) for r in records]})


async def publish_advisory(request: Request, actor: Principal) -> Response:
    body = await json_fields(request, *FIELDS)
    service = services(request).advisories
    record = await service.publish(actor, body.as_dict(), client=client(request))
    _, digests = await service.get(actor, record.id)
    return reply(views.advisory(record, digests), status=201)


async def update_advisory(request: Request, actor: Principal) -> Response:
    body = await json_fields(request, *FIELDS)
    service = services(request).advisories
    record = await service.update(
        actor, _id(request), body.as_dict(), client=client(request)
    )
    _, digests = await service.get(actor, record.id)
    return reply(views.advisory(record, digests))


async def get_advisory(request: Request, actor: Principal) -> Response:
    record, digests = await services(request).advisories.get(actor, _id(request))
    return reply(views.advisory(record, digests))


async def list_revisions(request: Request, actor: Principal) -> Response:
    revisions = await services(request).advisories.revisions(actor, _id(request))
    return reply({"revisions": [views.advisory_revision(r) for r in revisions]})


async def list_affected(request: Request, actor: Principal) -> Response:
    identities = await services(request).advisories.affected(actor, _id(request))
    return reply({"identities": [views.affected_identity(i) for i in identities]})
