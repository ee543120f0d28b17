"""``GET /v2/``: the API version check."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


async def version_check(_request: Request) -> Response:
    return JSONResponse({})
