"""The 5xx watch the integration tiers rely on (tests/watch5xx.py) sees what it must."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.watch5xx import ServerErrorWatch, server_log_errors


async def _ok(_request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def _unavailable(_request: object) -> PlainTextResponse:
    return PlainTextResponse("later", status_code=503)


async def test_the_watch_records_every_5xx_and_nothing_else() -> None:
    app = Starlette(
        routes=[
            Route("/ok", _ok),
            Route("/busy", _unavailable, methods=["GET", "POST"]),
        ]
    )
    watch = ServerErrorWatch(app)
    transport = httpx.ASGITransport(app=watch)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/ok")).status_code == 200
        assert (await client.get("/missing")).status_code == 404
        assert (await client.post("/busy")).status_code == 503
        assert (await client.get("/busy")).status_code == 503
    assert watch.seen == ["503 POST /busy", "503 GET /busy"]


LOG = """\
2026-12-03T12:00:00Z [info     ] request  method=GET path=/v2/ status=200 ms=1.0
2026-12-03T12:00:01Z [info     ] request  method=GET path=/v2/x status=404 ms=1.0
2026-12-03T12:00:02Z [error    ] unhandled error path=/v2/a/blobs/uploads/x
Traceback (most recent call last):
  File "uploads.py", line 1, in patch
    raise ClientDisconnect()
starlette.requests.ClientDisconnect
2026-12-03T12:00:02Z [info     ] request  method=PATCH path=/v2/a status=500 ms=3.0
{"event": "request", "status": 502, "path": "/v2/"}
{"event": "request", "status": 200, "path": "/v2/5000"}
"""


def test_server_log_errors_finds_tracebacks_and_5xx_lines() -> None:
    found = server_log_errors(LOG)
    traceback = LOG.splitlines()[3:7]
    access_500 = LOG.splitlines()[7]
    assert "status=500" in access_500
    assert found == [
        "\n".join(traceback),
        access_500,
        '{"event": "request", "status": 502, "path": "/v2/"}',
    ]
    assert server_log_errors("") == []
