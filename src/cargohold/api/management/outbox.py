"""``/outbox``: messages waiting or given up on (dead letters), and retrying them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import query_int
from cargohold.api.management.common import client, reply
from cargohold.api.state import services
from cargohold.registry.admin import InvalidRequest
from cargohold.registry.outbox import STATES

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal

MAX_LIMIT = 1000


async def list_outbox(request: Request, actor: Principal) -> Response:
    state = request.query_params.get("state") or None
    if state is not None and state not in STATES:
        raise InvalidRequest(f"'state' must be one of {', '.join(STATES)}")
    records = await services(request).outbox.messages(
        actor,
        state=state,
        after_id=query_int(request, "after", default=0, minimum=0, maximum=2**62),
        limit=query_int(request, "limit", default=100, minimum=1, maximum=MAX_LIMIT),
    )
    return reply({"messages": [views.outbox_message(record) for record in records]})


async def retry_outbox(request: Request, actor: Principal) -> Response:
    await services(request).outbox.retry(
        actor, request.path_params["message_id"], client=client(request)
    )
    return reply({"retried": request.path_params["message_id"]})
