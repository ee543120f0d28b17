"""``GET /v2/``: the API version check."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargohold.api.access import authenticate


async def version_check(request: Request) -> Response:
    await authenticate(request)
    return JSONResponse({})
