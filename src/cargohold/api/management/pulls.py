"""``/pulls`` and ``/me/pulls``: recorded manifest pulls, newest first.

Paged: at most ``limit`` pulls per answer; when there are more, the answer's ``next``
is a cursor to pass back as ``next``, and a ``Link: <…>; rel="next"`` header names the
following page (as ``/v2/<name>/tags/list`` does).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cargohold.api.management.body import query_int
from cargohold.api.management.common import reply
from cargohold.api.management.views import timestamp
from cargohold.api.state import services
from cargohold.metadata.pulls import PullFilter
from cargohold.registry.admin import InvalidRequest

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal
    from cargohold.registry.pulls import PullPage

MAX_LIMIT = 1000
_MAX_TEXT = {"repository": 255, "digest": 200, "tag": 200, "identity": 200}


def _text(request: Request, key: str) -> str | None:
    value = request.query_params.get(key) or None
    if value is not None and len(value) > _MAX_TEXT[key]:
        raise InvalidRequest(f"{key!r} is longer than {_MAX_TEXT[key]} characters")
    return value


def _time(request: Request, key: str) -> float | None:
    value = request.query_params.get(key) or None
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"{key!r} must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{key!r} must name its time zone (e.g. a trailing Z)")
    return moment.timestamp()


def _filter(request: Request) -> PullFilter:
    return PullFilter(
        repository=_text(request, "repository"),
        digest=_text(request, "digest"),
        reference=_text(request, "tag"),
        identity=_text(request, "identity"),
        since=_time(request, "since"),
        until=_time(request, "until"),
    )


def _answer(request: Request, page: PullPage) -> Response:
    body = {
        "pulls": [
            {
                "identity": r.event.identity,
                "repository": r.event.repository,
                "reference": r.event.reference,
                "digest": r.event.digest,
                "time": timestamp(r.event.at),
                "client": r.event.client,
                "user_agent": r.event.user_agent,
                "tool": r.event.tool,
                "tool_version": r.event.tool_version,
                "platform": r.event.platform,
                "method": r.event.method,
            }
            for r in page.pulls
        ],
        "next": page.next,
    }
    response = reply(body)
    if page.next is not None:
        url = request.url.include_query_params(next=page.next)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return response


def _paging(request: Request) -> tuple[int, str | None]:
    limit = query_int(request, "limit", default=100, minimum=1, maximum=MAX_LIMIT)
    return limit, request.query_params.get("next") or None


async def list_pulls(request: Request, actor: Principal) -> Response:
    limit, cursor = _paging(request)
    page = await services(request).pulls.pulls(
        actor, _filter(request), limit=limit, cursor=cursor
    )
    return _answer(request, page)


async def my_pulls(request: Request, actor: Principal) -> Response:
    limit, cursor = _paging(request)
    page = await services(request).pulls.my_pulls(
        actor, _filter(request), limit=limit, cursor=cursor
    )
    return _answer(request, page)
