"""``GET /v2/<name>/tags/list`` and ``GET /v2/_catalog``.

Both paginated (``n``, ``last``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.api.access import authenticate, authorize, unauthorized
from cargohold.api.v2.common import paginated_link, repository, services
from cargohold.auth.policy import PULL
from cargohold.auth.scopes import CATALOG, REGISTRY
from cargohold.oci.names import page_size


def _page(request: Request) -> tuple[str | None, int | None]:
    maximum = request.app.state.settings.registry.max_page_size
    return request.query_params.get("last"), page_size(
        request.query_params.get("n"), maximum=maximum
    )


def _response(
    key: str,
    page: list[str],
    shown: list[str],
    extra: dict[str, str],
    *,
    path: str,
    limit: int | None,
) -> Response:
    """``shown`` is ``page`` less what the caller may not see.

    The Link follows ``page``.
    """
    headers = {}
    if limit and len(page) == limit:
        headers["Link"] = paginated_link(path, last=page[-1], limit=limit)
    return JSONResponse(extra | {key: shown}, headers=headers)


async def list_tags(request: Request) -> Response:
    repo = repository(request)
    permit = await authorize(request, repo, PULL)
    last, limit = _page(request)
    tags = await services(request).manifests.tags(repo, last=last, limit=limit)
    # A tag-limited caller sees only its tags; pages may then come out short.
    shown = permit.visible_tags(tags)
    return _response(
        "tags", tags, shown, {"name": repo.value}, path=request.url.path, limit=limit
    )


async def catalog(request: Request) -> Response:
    scope = f"{REGISTRY}:{CATALOG}:*"
    token = await authenticate(request, scope)
    last, limit = _page(request)
    svc = services(request)
    names = await svc.repositories.catalog(last=last, limit=limit)
    shown = names
    if token is not None:
        if token.find(REGISTRY, CATALOG) is None:
            raise unauthorized(request, scope, error="insufficient_scope")
        shown = await svc.auth.access.pullable(token.principal, names)
    return _response(
        "repositories", names, shown, {}, path=request.url.path, limit=limit
    )
