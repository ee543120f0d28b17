"""Channel ``email`` against a real SMTP server (``aiosmtpd`` on loopback).

The outbox runs in this process over SQLite in tmp_path; ``tests/smtp.py`` holds the
server, which parses what it accepts with the stdlib ``email`` package.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.outbox import EMAIL
from cargohold.metadata.sql_outbox import SqlOutboxStore
from cargohold.registry.email import EmailSender, message_id
from cargohold.registry.outbox import DeliveryFailed, Outbox, OutboxItem
from cargohold.settings import OutboxSettings, SmtpSettings
from tests.clock import ManualClock
from tests.delivery import DIGEST, email_message, enqueue_emails
from tests.smtp import SmtpServer, free_port
from tests.tls import self_signed

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def smtp_settings(port: int, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": "registry@cargohold.example",
        "timeout_seconds": 10.0,
        "connections": 2,
    }
    return SmtpSettings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    upgrade(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def sender(smtp: SmtpServer) -> AsyncIterator[EmailSender]:
    sending = EmailSender(smtp_settings(smtp.port))
    try:
        yield sending
    finally:
        await sending.close()


def item(to: str, *, title: str | None = None) -> OutboxItem:
    message = email_message(to)
    payload = dict(message.payload)
    if title is not None:
        payload["document"] = payload["document"] | {"title": title}
    return OutboxItem(1, message.key, message.channel, payload, 0)


def rows(db: Database) -> dict[str, tuple[str, int, str | None]]:
    query = sa.select(
        t.outbox.c.key, t.outbox.c.state, t.outbox.c.attempts, t.outbox.c.last_error
    )
    return {
        row.key.rpartition(":")[2]: (row.state, row.attempts, row.last_error)
        for row in db.run_sync(lambda conn: conn.execute(query).all())
    }


async def test_the_message_says_what_was_pulled_and_the_fix(
    smtp: SmtpServer, sender: EmailSender
) -> None:
    sent = item("bob@example.com")
    await sender.deliver(sent)
    await sender.deliver(sent)  # a retry: recognisably the same message
    first, second = smtp.messages
    assert first["To"] == "bob@example.com"
    assert first["From"] == "registry@cargohold.example"
    assert first["Subject"] == "[high] ADV-1: ADV-1 title"
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"] == message_id(sent.key, "registry@cargohold.example")
    assert first["Message-ID"].endswith("@cargohold.example>")
    body = first.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert f"acme/app@{DIGEST}" in text
    assert "pulled by user:alice, last pull 2023-11-14T22:13:20Z" in text
    assert "Fixed in: acme/app:2" in text
    assert "State:    current" in text
    assert "https://example.com/ADV-1" in text
    assert "cargohold notices --registry <registry URL>" in text


async def test_the_message_names_the_registry_it_came_from(smtp: SmtpServer) -> None:
    sender = EmailSender(
        smtp_settings(smtp.port), registry_url="https://registry.example.com"
    )
    try:
        await sender.deliver(item("bob@example.com"))
    finally:
        await sender.close()
    [message] = smtp.messages
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "cargohold notices --registry https://registry.example.com" in text
    assert "GET https://registry.example.com/api/v1/notices" in text


async def test_no_header_injection_through_the_title(
    smtp: SmtpServer, sender: EmailSender
) -> None:
    await sender.deliver(item("bob@example.com", title="bad\r\nBcc: eve@example.com"))
    [message] = smtp.messages
    assert message["Bcc"] is None
    assert message["Subject"] == "[high] ADV-1: bad Bcc: eve@example.com"


async def test_connections_are_reused(smtp: SmtpServer, sender: EmailSender) -> None:
    for n in range(10):
        await sender.deliver(item(f"user{n}@example.com"))
    assert len(smtp.messages) == 10
    assert smtp.handler.sessions == 1


async def test_refusals_and_unreachable_servers(
    smtp: SmtpServer, sender: EmailSender
) -> None:
    smtp.handler.refused_recipients.add("gone@example.com")
    with pytest.raises(DeliveryFailed) as refused:
        await sender.deliver(item("gone@example.com"))
    assert refused.value.permanent
    assert "550" in refused.value.message
    smtp.handler.temporary_failures = 1
    with pytest.raises(DeliveryFailed) as later:
        await sender.deliver(item("bob@example.com"))
    assert not later.value.permanent
    assert "451" in later.value.message
    with pytest.raises(DeliveryFailed) as bad:
        await sender.deliver(item("not an address"))
    assert bad.value.permanent
    await sender.deliver(item("bob@example.com"))  # the connection still works
    assert len(smtp.messages) == 1
    nobody = EmailSender(smtp_settings(free_port()))
    with pytest.raises(DeliveryFailed) as unreachable:
        await nobody.deliver(item("bob@example.com"))
    await nobody.close()
    assert not unreachable.value.permanent
    assert "cannot connect" in unreachable.value.message


async def test_outbox_retries_temporary_refusals_and_buries_permanent_ones(
    smtp: SmtpServer, sender: EmailSender, db: Database
) -> None:
    clock = ManualClock(1_700_000_000.0)
    settings = OutboxSettings(base_delay_seconds=10, max_attempts=5)
    outbox = Outbox(SqlOutboxStore(db), settings, clock=clock, jitter=lambda: 0.0)
    outbox.register(EMAIL, sender.deliver)
    smtp.handler.temporary_failures = 1
    smtp.handler.refused_recipients.add("gone@example.com")
    enqueue_emails(db, ["bob@example.com", "gone@example.com"], now=clock())
    await outbox.drain(until=clock())
    state = rows(db)
    assert state["gone@example.com"][:2] == ("dead", 1)
    assert "550" in (state["gone@example.com"][2] or "")
    assert state["bob@example.com"][:2] == ("pending", 1)
    assert smtp.messages == []
    clock.advance(10)
    await outbox.drain(until=clock())
    assert rows(db)["bob@example.com"][:2] == ("done", 2)
    assert [m["To"] for m in smtp.messages] == ["bob@example.com"]
    assert smtp.handler.refusals == 1


async def test_non_ascii_titles_are_encoded(
    smtp: SmtpServer, sender: EmailSender
) -> None:
    await sender.deliver(item("bob@example.com", title="Überfall — café"))
    [message] = smtp.messages
    assert message["Subject"] == "[high] ADV-1: Überfall — café"


def _server_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    cert, key = self_signed(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


async def test_starttls_verified_against_the_configured_ca_with_a_login(
    tmp_path: Path,
) -> None:
    """The default ``starttls`` against a real server that requires it: the
    certificate is verified (here against ``smtp.ca_file``), the login is sent
    inside TLS, and without the CA the delivery fails rather than go out unverified.
    (``tls``, TLS from the first byte, is the same client code with ``use_tls``; the
    test server, aiosmtpd, did not greet over implicit TLS here, so it is untested.)"""
    security = "starttls"
    context, cert = _server_tls(tmp_path)
    smtp = SmtpServer(tls=context, credentials=("registry", "relay-password"))
    smtp.start()
    settings = {
        "security": security,
        "username": "registry",
        "password": "relay-password",
    }
    try:
        trusting = EmailSender(smtp_settings(smtp.port, ca_file=cert, **settings))
        try:
            await trusting.deliver(item("bob@example.com"))
        finally:
            await trusting.close()
        [message] = smtp.messages
        assert message["To"] == "bob@example.com"
        assert smtp.handler.over_tls == 1
        assert smtp.handler.logins == ["registry"]
        untrusting = EmailSender(smtp_settings(smtp.port, **settings))
        try:
            with pytest.raises(DeliveryFailed) as refused:
                await untrusting.deliver(item("carol@example.com"))
        finally:
            await untrusting.close()
        assert "certificate" in str(refused.value).lower()
        assert len(smtp.messages) == 1
    finally:
        smtp.stop()
