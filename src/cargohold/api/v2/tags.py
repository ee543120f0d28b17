"""``GET /v2/<name>/tags/list`` and ``GET /v2/_catalog``.

Both paginated (``n``, ``last``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.api.access import authenticate, authorize, unauthorized
from cargohold.api.state import services, settings
from cargohold.api.v2.common import paginated_link, repository
from cargohold.auth.policy import PULL
from cargohold.auth.scopes import CATALOG, REGISTRY
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
    permit = await authorize(request, repo, PULL)
    last, limit = _page(request)

    async def keep(tags: list[str]) -> list[str]:
        return permit.visible_tags(tags)

    page = await services(request).manifests.tags(
        repo, last=last, limit=limit, keep=keep if permit.tags is not None else None
    )
    return _response(
        "tags", page, {"name": repo.value}, path=request.url.path, limit=limit
    )


async def catalog(request: Request) -> Response:
    scope = f"{REGISTRY}:{CATALOG}:*"
    token = await authenticate(request, scope)
    last, limit = _page(request)
    svc = services(request)
    keep = None
    if token is not None:
        if token.find(REGISTRY, CATALOG) is None:
            raise unauthorized(request, scope, error="insufficient_scope")
        principal = token.principal

        async def keep(names: list[str]) -> list[str]:
            return await svc.auth.access.pullable(principal, names)

    page = await svc.repositories.catalog(last=last, limit=limit, keep=keep)
    return _response("repositories", page, {}, path=request.url.path, limit=limit)
