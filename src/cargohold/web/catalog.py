"""The web catalog: ``/`` (search, organizations, repositories), ``/r/<name>`` (a
repository), ``/r/<name>@<digest>`` (an image), ``/signin``, ``/signout`` and
``/static/…`` (the stylesheet and the one small script every page shares).

Handlers turn a request into one ``CatalogService`` (or ``ImageMetadataService``) call
for the viewer and render it; what the viewer may see is decided there. A repository
the viewer may not see answers the very page a name that does not exist answers.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from cargohold.api.management.common import client
from cargohold.api.state import services, settings
from cargohold.oci.errors import TooManyRequests, Unauthorized
from cargohold.registry.admin import InvalidRequest, NotFound
from cargohold.registry.catalog import platform_text
from cargohold.registry.osv import SEVERITIES
from cargohold.registry.web_sessions import SESSION_SECONDS
from cargohold.web import session

if TYPE_CHECKING:
    from starlette.requests import Request

_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# What a page shows depends on who looks: never cached by anyone.
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
_MAX_FORM = 4096  # bytes of a sign-in form
_MAX_PARAM = 300  # characters of a query parameter kept


def _size(value: object) -> str:
    if not isinstance(value, int) or value < 0:
        return "—"
    if value < 1024:  # noqa: PLR2004
        return f"{value} B"
    exponent = min(int(math.log(value, 1024)), 4)
    return f"{value / 1024**exponent:.1f} {'BKMGT'[exponent]}iB"


def _when(value: object) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")


_ENV = Environment(
    loader=PackageLoader("cargohold.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["size"] = _size
_ENV.filters["when"] = _when
_ENV.filters["platform"] = platform_text
_ENV.globals["severities"] = SEVERITIES


def _param(request: Request, name: str) -> str | None:
    """A query parameter, without control characters (no database takes a NUL)."""
    value = request.query_params.get(name)
    if value is None:
        return None
    cleaned = "".join(c for c in value if c.isprintable())[:_MAX_PARAM]
    return cleaned or None


async def _page(
    request: Request,
    template: str,
    viewer: session.Viewer,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    html = _ENV.get_template(template).render(
        viewer=viewer, host=settings(request).server.public_host, **context
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


async def _not_found(request: Request, viewer: session.Viewer) -> Response:
    # The same page, byte for byte, for a private repository and a missing one.
    return await _page(request, "notfound.html", viewer, status=404)


async def home(request: Request) -> Response:
    viewer = await session.viewer(request)
    query = _param(request, "q")
    organization = _param(request, "org")
    catalog = services(request).catalog
    after = _param(request, "after")
    listing = await catalog.repositories(
        viewer.principal, query=query, organization=organization, after=after
    )
    more = None
    if listing.next_after is not None:
        kept = (("q", query), ("org", organization), ("after", listing.next_after))
        more = "/?" + urlencode({k: v for k, v in kept if v})
    return await _page(
        request,
        "home.html",
        viewer,
        query=query or "",
        organization=organization,
        repositories=listing.items,
        more=more,
        # On the first page of the whole catalog only: a search lists repositories.
        organizations=(
            await catalog.organizations(viewer.principal)
            if query is None and organization is None and after is None
            else []
        ),
    )


async def repository(request: Request) -> Response:
    viewer = await session.viewer(request)
    try:
        view = await services(request).catalog.repository(
            viewer.principal,
            request.path_params["name"],
            after=_param(request, "after"),
            history_tag=_param(request, "tag"),
        )
    except NotFound:
        return await _not_found(request, viewer)
    return await _page(request, "repository.html", viewer, repo=view)


async def image(request: Request) -> Response:
    viewer = await session.viewer(request)
    try:
        found = await services(request).image_metadata.metadata(
            viewer.principal, request.path_params["name"], request.path_params["ref"]
        )
    except (NotFound, InvalidRequest):
        return await _not_found(request, viewer)
    facts = dict(found.description.facts) if found.description else {}
    wanted = (_param(request, "packages") or "").lower()
    packages = [
        p
        for p in found.packages
        if not wanted or wanted in f"{p.ecosystem} {p.name} {p.version}".lower()
    ]
    return await _page(
        request,
        "image.html",
        viewer,
        image=found,
        facts=facts,
        packages=packages,
        package_filter=wanted,
    )


def _signin_form(
    request: Request,
    viewer: session.Viewer,
    *,
    error: str | None = None,
    status: int = 200,
    username: str = "",
) -> Response:
    token = session.new_signin_token()
    html = _ENV.get_template("signin.html").render(
        viewer=viewer,
        host=settings(request).server.public_host,
        csrf=token,
        error=error,
        username=username,
    )
    response = HTMLResponse(html, status_code=status, headers=_HEADERS)
    session.set_cookie(
        request, response, session.CSRF_COOKIE, token, max_age=3600, samesite="strict"
    )
    return response


async def signin_page(request: Request) -> Response:
    viewer = await session.viewer(request)
    if not viewer.can_sign_in:
        return await _page(request, "nosignin.html", viewer, status=404)
    return _signin_form(request, viewer)


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return {}
    try:
        fields = parse_qs(body.decode(), max_num_fields=10)
    except ValueError:  # not UTF-8, or too many fields
        return {}
    return {k: v[0] for k, v in fields.items()}


async def signin(request: Request) -> Response:
    viewer = await session.viewer(request)
    if not viewer.can_sign_in:
        return await _page(request, "nosignin.html", viewer, status=404)
    form = await _form(request)
    if not session.same_origin(request) or not session.token_matches(
        form.get(session.CSRF_FIELD), request.cookies.get(session.CSRF_COOKIE)
    ):
        return _signin_form(
            request,
            viewer,
            error="The form expired or came from another site. Please try again.",
            status=403,
        )
    # No database takes a NUL: such credentials are nobody's (the same answer).
    username = form.get("username", "")[:64].replace("\x00", "\ufffd")
    password = form.get("password", "").replace("\x00", "\ufffd")
    try:
        new = await services(request).web_sessions.sign_in(
            username, password, client=client(request)
        )
    except TooManyRequests:
        return _signin_form(
            request,
            viewer,
            error="Too many failed sign-ins. Try again later.",
            status=429,
            username=username,
        )
    except Unauthorized:
        return _signin_form(
            request,
            viewer,
            error="Wrong username or password.",
            status=401,
            username=username,
        )
    response = RedirectResponse("/", status_code=303, headers=_HEADERS)
    session.set_cookie(
        request,
        response,
        session.SESSION_COOKIE,
        new.session_id,
        max_age=int(SESSION_SECONDS),
    )
    response.delete_cookie(session.CSRF_COOKIE, path="/")
    return response


async def signout(request: Request) -> Response:
    viewer = await session.viewer(request)
    form = await _form(request)
    signed_in = viewer.signed_in
    if signed_in is None:
        return RedirectResponse("/", status_code=303, headers=_HEADERS)
    if not session.same_origin(request) or not session.token_matches(
        form.get(session.CSRF_FIELD), signed_in.csrf
    ):
        return await _page(request, "forbidden.html", viewer, status=403)
    await services(request).web_sessions.sign_out(
        request.cookies.get(session.SESSION_COOKIE, "")
    )
    response = RedirectResponse("/", status_code=303, headers=_HEADERS)
    response.delete_cookie(session.SESSION_COOKIE, path="/")
    return response


@cache
def _static(name: str) -> bytes:
    return (files("cargohold.web") / "static" / name).read_bytes()


_STATIC_TYPES = {"cargohold.css": "text/css", "catalog.js": "text/javascript"}


async def static(request: Request) -> Response:
    name = request.path_params["file"]
    media_type = _STATIC_TYPES.get(name)
    if media_type is None:
        return Response("not found\n", status_code=404, media_type="text/plain")
    return Response(
        _static(name),
        media_type=media_type,
        headers={
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


routes = [
    Route("/", home, methods=["GET"], name="catalog_home"),
    Route("/signin", signin_page, methods=["GET"], name="signin_page"),
    Route("/signin", signin, methods=["POST"], name="signin"),
    Route("/signout", signout, methods=["POST"], name="signout"),
    Route("/static/{file}", static, methods=["GET"], name="static"),
    # An image first: a repository name never holds "@".
    Route("/r/{name:path}@{ref}", image, methods=["GET"], name="catalog_image"),
    Route("/r/{name:path}", repository, methods=["GET"], name="catalog_repository"),
]
