"""A real SMTP server on loopback for the tests: ``aiosmtpd`` in a thread.

``SmtpServer`` collects what it accepts (parsed with the stdlib ``email`` package) and
can be told to answer ``RCPT``/``DATA`` otherwise: refuse the next N messages with a
temporary 451, refuse a recipient permanently with 550, or hold ``DATA`` until released
(to kill a server mid-delivery).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class _Handler:
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    temporary_failures: int = 0
    refused_recipients: set[str] = field(default_factory=set)
    hold: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)
    sessions: int = 0
    refusals: int = 0
    # Messages that arrived over TLS (STARTTLS or implicit), and the logins seen.
    over_tls: int = 0
    logins: list[str] = field(default_factory=list)

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: Any,
        session: Any,
        envelope: Any,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refused_recipients:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        with self.lock:
            if self.temporary_failures > 0:
                self.temporary_failures -= 1
                self.refusals += 1
                return "451 4.3.0 try again later"
        if self.hold is not None:
            self.held.set()
            await asyncio.get_running_loop().run_in_executor(None, self.hold.wait)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
            if session.ssl is not None:
                self.over_tls += 1
        return "250 OK accepted"


class SmtpServer:
    """``tls``: a server certificate context; with it the server offers STARTTLS and
    requires it. ``credentials``: the one (user, password) it accepts, and it
    requires a login (over TLS)."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.handler = _Handler()
        self.port = free_port()
        options: dict[str, Any] = {}
        if tls is not None:
            options |= {"tls_context": tls, "require_starttls": True}
        if credentials is not None:
            options |= {
                "authenticator": self._authenticator(credentials),
                "auth_required": True,
            }
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            **options,
        )

    def _authenticator(self, credentials: tuple[str, str]) -> Any:
        def check(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            if not isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user, password = data.login.decode(), data.password.decode()
            with self.handler.lock:
                self.handler.logins.append(user)
            return AuthResult(success=(user, password) == credentials)

        return check

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        if self.handler.hold is not None:
            self.handler.hold.set()
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)
