"""``/status/incidents`` and ``/status/maintenances``: the status page's incidents and
scheduled maintenances, with their updates (administrators only, audited)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cargohold.api.management.body import json_fields, query_int
from cargohold.api.management.common import client, reply
from cargohold.api.state import services
from cargohold.metadata.status import INCIDENT, MAINTENANCE
from cargohold.registry.admin import InvalidRequest, NotFound
from cargohold.web.status_render import iso

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal
    from cargohold.metadata.status import Incident
    from cargohold.registry.status import StatusService

MAX_LIMIT = 200
MAX_BODY_TEXT = 10_000


def _service(request: Request, actor: Principal) -> StatusService:
    """The status service, once ``actor`` may manage it (before a body is read)."""
    status = services(request).status
    if status is None:
        raise NotFound("this registry has no status page")
    status.may_manage(actor)
    return status


def view(item: Incident) -> dict[str, object]:
    body: dict[str, object] = {
        "id": item.id,
        "name": item.name,
        "status": item.status,
        "impact": item.impact,
        "components": list(item.components),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "monitoring_at": iso(item.monitoring_at),
        "resolved_at": iso(item.resolved_at),
        "updates": [
            {
                "id": u.id,
                "status": u.status,
                "body": u.body,
                "created_at": iso(u.created_at),
            }
            for u in item.updates
        ],
    }
    if item.kind == MAINTENANCE:
        body["scheduled_for"] = iso(item.scheduled_for)
        body["scheduled_until"] = iso(item.scheduled_until)
    return body


def _moment(value: str, field: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{field!r} must be an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{field!r} needs a time zone (e.g. Z or +02:00)")
    return moment.timestamp()


def _limit(request: Request) -> int:
    return query_int(request, "limit", default=50, minimum=1, maximum=MAX_LIMIT)


async def list_incidents(request: Request, actor: Principal) -> Response:
    found = await _service(request, actor).list(actor, INCIDENT, limit=_limit(request))
    return reply([view(item) for item in found])


async def list_maintenances(request: Request, actor: Principal) -> Response:
    found = await _service(request, actor).list(
        actor, MAINTENANCE, limit=_limit(request)
    )
    return reply([view(item) for item in found])


async def get_incident(request: Request, actor: Principal) -> Response:
    item = await _service(request, actor).get(
        actor, INCIDENT, request.path_params["incident_id"]
    )
    return reply(view(item))


async def get_maintenance(request: Request, actor: Principal) -> Response:
    item = await _service(request, actor).get(
        actor, MAINTENANCE, request.path_params["maintenance_id"]
    )
    return reply(view(item))


async def create_incident(request: Request, actor: Principal) -> Response:
    status = _service(request, actor)
    fields = await json_fields(
        request, "name", "body", "status", "impact", "components"
    )
    item = await status.create_incident(
        actor,
        name=fields.text("name"),
        body=fields.text("body", max_length=MAX_BODY_TEXT),
        status=fields.optional_text("status") or "investigating",
        impact=fields.optional_text("impact") or "minor",
        components=fields.strings("components") or [],
        client=client(request),
    )
    return reply(view(item), status=201)


async def update_incident(request: Request, actor: Principal) -> Response:
    status = _service(request, actor)
    fields = await json_fields(request, "body", "status", "impact", "components")
    item = await status.add_update(
        actor,
        INCIDENT,
        request.path_params["incident_id"],
        status=fields.text("status"),
        body=fields.text("body", max_length=MAX_BODY_TEXT),
        impact=fields.optional_text("impact"),
        components=fields.strings("components"),
        client=client(request),
    )
    return reply(view(item), status=201)


async def schedule_maintenance(request: Request, actor: Principal) -> Response:
    status = _service(request, actor)
    fields = await json_fields(
        request, "name", "body", "scheduled_for", "scheduled_until", "components"
    )
    item = await status.schedule_maintenance(
        actor,
        name=fields.text("name"),
        body=fields.text("body", max_length=MAX_BODY_TEXT),
        scheduled_for=_moment(fields.text("scheduled_for"), "scheduled_for"),
        scheduled_until=_moment(fields.text("scheduled_until"), "scheduled_until"),
        components=fields.strings("components") or [],
        client=client(request),
    )
    return reply(view(item), status=201)


async def update_maintenance(request: Request, actor: Principal) -> Response:
    status = _service(request, actor)
    fields = await json_fields(request, "body", "status", "components")
    item = await status.add_update(
        actor,
        MAINTENANCE,
        request.path_params["maintenance_id"],
        status=fields.text("status"),
        body=fields.text("body", max_length=MAX_BODY_TEXT),
        components=fields.strings("components"),
        client=client(request),
    )
    return reply(view(item), status=201)


OPERATIONS = (
    ("GET", "/status/incidents", list_incidents),
    ("POST", "/status/incidents", create_incident),
    ("GET", "/status/incidents/{incident_id}", get_incident),
    ("POST", "/status/incidents/{incident_id}/updates", update_incident),
    ("GET", "/status/maintenances", list_maintenances),
    ("POST", "/status/maintenances", schedule_maintenance),
    ("GET", "/status/maintenances/{maintenance_id}", get_maintenance),
    ("POST", "/status/maintenances/{maintenance_id}/updates", update_maintenance),
)
