"""``/orgs/{org}/webhooks`` (owners) and ``/webhooks`` (registry-wide, admins).

The signing secret is in the answers to create and rotate only; listings never show it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import json_fields, query_int
from cargohold.api.management.common import client, no_content, reply
from cargohold.api.state import services

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from cargohold.auth.policy import Principal
    from cargohold.registry.webhooks import WebhookService

Handler = Callable[["Request", "Principal"], Awaitable["Response"]]
MAX_LIMIT = 1000


def _service(request: Request) -> WebhookService:
    return services(request).webhooks


async def _create(request: Request, actor: Principal, scope: str | None) -> Response:
    body = await json_fields(request, "url", "events", "repositories", "batch_pulls")
    created = await _service(request).create(
        actor,
        scope,
        url=body.text("url", max_length=2048),
        events=body.strings("events"),
        repositories=body.strings("repositories"),
        batch_pulls=body.flag("batch_pulls", default=False),
        client=client(request),
    )
    return reply(views.webhook(created.record) | {"secret": created.secret}, status=201)


async def _list(request: Request, actor: Principal, scope: str | None) -> Response:
    records = await _service(request).query(actor, scope)
    return reply([views.webhook(record) for record in records])


async def _get(request: Request, actor: Principal, scope: str | None) -> Response:
    record = await _service(request).get(actor, scope, _id(request))
    return reply(views.webhook(record))


async def _delete(request: Request, actor: Principal, scope: str | None) -> Response:
    await _service(request).delete(actor, scope, _id(request), client=client(request))
    return no_content()


async def _disable(request: Request, actor: Principal, scope: str | None) -> Response:
    record = await _service(request).set_disabled(
        actor, scope, _id(request), disabled=True, client=client(request)
    )
    return reply(views.webhook(record))


async def _enable(request: Request, actor: Principal, scope: str | None) -> Response:
    record = await _service(request).set_disabled(
        actor, scope, _id(request), disabled=False, client=client(request)
    )
    return reply(views.webhook(record))


async def _rotate(request: Request, actor: Principal, scope: str | None) -> Response:
    rotated = await _service(request).rotate(
        actor, scope, _id(request), client=client(request)
    )
    return reply(views.webhook(rotated.record) | {"secret": rotated.secret})


async def _test(request: Request, actor: Principal, scope: str | None) -> Response:
    outcome = await _service(request).test(actor, scope, _id(request))
    return reply(
        {
            "ok": outcome.ok,
            "status_code": outcome.status_code,
            "error": outcome.error,
            "duration_ms": round(outcome.duration_ms, 3),
        }
    )


async def _deliveries(
    request: Request, actor: Principal, scope: str | None
) -> Response:
    before = query_int(request, "before", default=0, minimum=0, maximum=2**62)
    records = await _service(request).deliveries(
        actor,
        scope,
        _id(request),
        before_id=before or None,
        limit=query_int(request, "limit", default=100, minimum=1, maximum=MAX_LIMIT),
    )
    return reply([views.webhook_delivery(record) for record in records])


def _id(request: Request) -> str:
    return str(request.path_params["webhook_id"])


def _scoped(
    name: str,
    action: Callable[[Request, Principal, str | None], Awaitable[Response]],
    *,
    org: bool,
) -> Handler:
    async def handler(request: Request, actor: Principal) -> Response:
        scope = request.path_params["org"] if org else None
        return await action(request, actor, scope)

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = action.__doc__
    return handler


_ACTIONS = {
    "create": _create,
    "list": _list,
    "get": _get,
    "delete": _delete,
    "disable": _disable,
    "enable": _enable,
    "rotate": _rotate,
    "test": _test,
    "deliveries": _deliveries,
}
ORG = {
    verb: _scoped(f"{verb}_org_webhook", fn, org=True) for verb, fn in _ACTIONS.items()
}
WIDE = {
    verb: _scoped(f"{verb}_webhook", fn, org=False) for verb, fn in _ACTIONS.items()
}


def operations(
    prefix: str, handlers: dict[str, Handler]
) -> tuple[tuple[str, str, Handler], ...]:
    """The routes of one scope under ``prefix`` (``/webhooks`` or
    ``/orgs/{org}/webhooks``)."""
    one = prefix + "/{webhook_id}"
    return (
        ("GET", prefix, handlers["list"]),
        ("POST", prefix, handlers["create"]),
        ("GET", one, handlers["get"]),
        ("DELETE", one, handlers["delete"]),
        ("POST", one + "/disable", handlers["disable"]),
        ("POST", one + "/enable", handlers["enable"]),
        ("POST", one + "/rotate", handlers["rotate"]),
        ("POST", one + "/test", handlers["test"]),
        ("GET", one + "/deliveries", handlers["deliveries"]),
    )
