"""``GET /status``, ``/status/history.atom`` and Statuspage's ``/api/v2/*.json``.

Public by design: components, checks and incidents name no repository and no
identity. Reading never writes; the checks are run by the background job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from cargohold.api.state import services
from cargohold.registry.admin import NotFound
from cargohold.web.status_render import DOCUMENTS, SERVER_LINKS, atom, documents, html

if TYPE_CHECKING:
    from starlette.requests import Request

    from cargohold.registry.status import StatusService

# No script, no inline style, nothing from another origin.
_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'"
# The status is read often and changes each check round: revalidate every time.
_FRESH = {"Cache-Control": "no-cache"}
# Aggregators and dashboards read these documents from other origins (public data).
_CORS = {**_FRESH, "Access-Control-Allow-Origin": "*"}


def _status(request: Request) -> StatusService:
    status = services(request).status
    if status is None:
        raise NotFound("this registry has no status page")
    return status


async def status_page(request: Request) -> Response:
    view = await _status(request).view()
    return HTMLResponse(
        html(view, SERVER_LINKS), headers={**_FRESH, "Content-Security-Policy": _CSP}
    )


async def history_feed(request: Request) -> Response:
    view = await _status(request).view()
    page = str(request.url_for("status_page"))
    return Response(
        atom(view, page_url=page),
        media_type="application/atom+xml; charset=utf-8",
        headers=_FRESH,
    )


def _document(name: str) -> Route:
    async def endpoint(request: Request) -> Response:
        view = await _status(request).view()
        return JSONResponse(documents(view)[name], headers=_CORS)

    route_name = "statuspage_" + name.removesuffix(".json").replace("/", "_")
    endpoint.__name__ = route_name.replace("-", "_")
    return Route(f"/api/v2/{name}", endpoint, methods=["GET"], name=endpoint.__name__)


routes = [
    Route("/status", status_page, methods=["GET"], name="status_page"),
    Route("/status/history.atom", history_feed, methods=["GET"], name="status_feed"),
    *(_document(name) for name in DOCUMENTS),
]
