"""Fail a test on any 5xx answer it did not ask for.

``ServerErrorWatch`` wraps an in-process ASGI app and records every response whose
status is 500 or more; ``tests/conftest.py`` ``make_client`` checks the record at
teardown. ``server_log_errors`` does the same for a subprocess server's log. A test that
provokes a 5xx on purpose says so with ``@pytest.mark.allow_5xx``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_MARK = "allow_5xx"
# What a server log shows for an answer the server failed: an unhandled exception
# (structlog's "exception" key or a bare traceback) or a 5xx access-log line.
_LOG_ERROR = re.compile(
    r'Traceback \(most recent call last\)|"exception": |\bexc_info\b'
    r'|"status(?:_code)?": 5\d\d\b|" 5\d\d \d|\bstatus=5\d\d\b'
)


@dataclass
class ServerErrorWatch:
    """ASGI middleware: passes everything through, notes each 5xx."""

    app: ASGIApp
    seen: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 500:
                self.seen.append(
                    f"{message['status']} {scope['method']} {scope['path']}"
                )
            await send(message)

        await self.app(scope, receive, watching_send)


def server_log_errors(text: str) -> list[str]:
    """What a server log shows of unhandled errors and 5xx answers.

    One entry per matching line; a traceback comes whole, up to its exception line.
    """
    lines = text.splitlines()
    found: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not _LOG_ERROR.search(line):
            continue
        if line.startswith("Traceback"):
            end = index
            while end < len(lines) and lines[end].startswith((" ", "\t")):
                end += 1
            found.append("\n".join(lines[index - 1 : end + 1]))
            index = end + 1
        else:
            found.append(line)
    return found
