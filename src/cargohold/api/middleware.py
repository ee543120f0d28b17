"""Pure ASGI middleware (blobs stream, so no BaseHTTPMiddleware)."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("cargohold.access")

_API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")
# containers/image reads signatures through /extensions/v2/ when the version check
# (/v2/, answered 200 or 401) says so (api/v2/signatures.py).
_SIGNATURES = (b"x-registry-supports-signatures", b"1")


class RegistryHeaders:
    """Adds ``Docker-Distribution-API-Version`` and a request id.

    Logs access if asked.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = 0
        version_check = scope["path"] in ("/v2/", "/v2")

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    _API_VERSION,
                    (b"x-request-id", request_id.encode()),
                    *((_SIGNATURES,) if version_check else ()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if self.access_log:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                    request_id=request_id,
                    client=(scope.get("client") or ("",))[0],
                )
