"""``/audit``: the audit log, oldest first, paged by event id."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import query_int
from cargohold.api.management.common import admin, reply
from cargohold.registry.admin import InvalidRequest

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal

MAX_LIMIT = 1000


async def list_events(request: Request, actor: Principal) -> Response:
    subject = request.query_params.get("actor") or None
    if subject is not None and len(subject) > 200:  # noqa: PLR2004 - the column's size
        raise InvalidRequest("'actor' is longer than 200 characters")
    events = await admin(request).audit_events(
        actor,
        after_id=query_int(request, "after", default=0, minimum=0, maximum=2**62),
        limit=query_int(request, "limit", default=100, minimum=1, maximum=MAX_LIMIT),
        subject=subject,
    )
    return reply([views.audit_event(event) for event in events])
