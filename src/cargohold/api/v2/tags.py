"""``GET /v2/<name>/tags/list`` and ``GET /v2/_catalog``.

Both paginated (``n``, ``last``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.api.access import authorize, catalog_viewer
from cargohold.api.state import services, settings
from cargohold.api.v2.common import paginated_link, repository
from cargohold.auth.policy import PULL
from cargohold.oci.names import page_size
from cargohold.registry.paging import Page


def _page(request: Request) -> tuple[str | None, int | None]:
    maximum = settings(request).registry.max_page_size
    return request.query_params.get("last"), page_size(
        request.query_params.get("n"), maximum=maximum
    )


def _response(
    key: str, page: Page, extra: dict[str, str], *, path: str, limit: int | None
) -> Response:
    headers = {}
    if limit and page.more and page.items:
        headers["Link"] = paginated_link(path, last=page.items[-1], limit=limit)
    return JSONResponse(extra | {key: page.items}, headers=headers)


async def list_tags(request: Request) -> Response:
    repo = repository(request)
    access = await authorize(request, repo, PULL)
    last, limit = _page(request)
    page = await services(request).manifests.tags(access, last=last, limit=limit)
    return _response(
        "tags", page, {"name": repo.value}, path=request.url.path, limit=limit
    )


async def catalog(request: Request) -> Response:
    viewer = await catalog_viewer(request)
    last, limit = _page(request)
    page = await services(request).repositories.catalog(viewer, last=last, limit=limit)
    return _response("repositories", page, {}, path=request.url.path, limit=limit)
