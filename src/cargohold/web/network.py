"""``GET /network`` (HTML) and ``GET /network.json``.

Public: the page says how to reach the registry and names no repository.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from cargohold.api.state import settings
from cargohold.network import requirements

_ENV = Environment(
    loader=PackageLoader("cargohold.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# No script, no inline style, nothing from another origin.
_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'"


async def network_page(request: Request) -> Response:
    page = _ENV.get_template("network.html").render(req=requirements(settings(request)))
    return HTMLResponse(page, headers={"Content-Security-Policy": _CSP})


async def network_json(request: Request) -> Response:
    return JSONResponse(requirements(settings(request)).to_json())


routes = [
    Route("/network", network_page, methods=["GET"], name="network_page"),
    Route("/network.json", network_json, methods=["GET"], name="network_json"),
]
