"""``GET /v2/<name>/tags/list`` and ``GET /v2/_catalog``, both paginated (``n``, ``last``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.api.v2.common import paginated_link, repository, services
from cargohold.oci.names import page_size


def _page(request: Request) -> tuple[str | None, int | None]:
    maximum = request.app.state.settings.registry.max_page_size
    return request.query_params.get("last"), page_size(
        request.query_params.get("n"), maximum=maximum
    )


def _response(key: str, items: list[str], extra: dict[str, str], *, path: str,
              limit: int | None) -> Response:
    headers = {}
    if limit and len(items) == limit:
        headers["Link"] = paginated_link(path, last=items[-1], limit=limit)
    return JSONResponse(extra | {key: items}, headers=headers)


async def list_tags(request: Request) -> Response:
    repo = repository(request)
    last, limit = _page(request)
    tags = await services(request).manifests.tags(repo, last=last, limit=limit)
    return _response("tags", tags, {"name": repo.value}, path=request.url.path, limit=limit)


async def catalog(request: Request) -> Response:
    last, limit = _page(request)
    names = await services(request).repositories.catalog(last=last, limit=limit)
    return _response("repositories", names, {}, path=request.url.path, limit=limit)
