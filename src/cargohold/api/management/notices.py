"""``/notices``: the caller's own inbox of advisory notices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.common import reply
from cargohold.api.state import services
from cargohold.registry.admin import InvalidRequest

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal


def _unread(request: Request) -> bool:
    raw = request.query_params.get("unread", "false").lower()
    if raw not in {"true", "false", "1", "0"}:
        raise InvalidRequest("'unread' must be true or false")
    return raw in {"true", "1"}


async def list_notices(request: Request, actor: Principal) -> Response:
    records = await services(request).notices.notices(actor, unread=_unread(request))
    return reply({"notices": [views.notice(record) for record in records]})


async def read_notice(request: Request, actor: Principal) -> Response:
    await services(request).notices.mark_read(actor, request.path_params["notice_id"])
    return reply({"read": 1})


async def read_all_notices(request: Request, actor: Principal) -> Response:
    count = await services(request).notices.mark_all_read(actor)
    return reply({"read": count})
