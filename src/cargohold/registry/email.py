"""Channel ``email``: one message per recipient over SMTP (``aiosmtplib``).

A message lists the affected images the recipient's identities pulled, the advisory's
state and fix, and how to read the inbox. Its ``Message-ID`` is derived from the outbox
key, so a message sent again after an ambiguous failure (the server accepted it, the
process died before recording that) carries the same id and receivers can drop it.

Connections are kept open and reused (at most ``smtp.connections``), so a burst of
messages costs one SMTP session per connection, not one per message.

Failures: a 5xx answer to the recipient or the message content is permanent (the
message is dead at once); 4xx answers, refused connections, timeouts, and 5xx answers
about the sender or the login (the registry's own configuration) are retried.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Any

import aiosmtplib
import anyio

from cargohold.registry.outbox import DeliveryFailed

if TYPE_CHECKING:
    from cargohold.registry.outbox import OutboxItem
    from cargohold.settings import SmtpSettings

# A connection idle longer than this is checked with NOOP before it is reused.
_CHECK_AFTER = 5.0
# Servers drop idle sessions after a few minutes (RFC 5321 §4.5.3.2.7: 5 minutes).
_DROP_AFTER = 120.0


def _line(value: object) -> str:
    """One header-safe line: no line breaks (header injection), bounded length."""
    return " ".join(str(value).split())[:200]


def _when(value: object) -> str:
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, tz=UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value) if value else "unknown"


def message_id(key: str, sender: str) -> str:
    """``<hash of the outbox key>@<sender's domain>``: the same on every retry."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    domain = sender.rpartition("@")[2] or "cargohold.invalid"
    return f"<{digest}@{domain}>"


def _body(payload: dict[str, Any], registry_url: str | None) -> str:
    where = registry_url or "<registry URL>"
    document: dict[str, Any] = payload.get("document") or {}
    advisory = _line(payload.get("advisory", document.get("advisory", "")))
    title = _line(document.get("title", ""))
    lines = [
        f"Advisory {advisory}: {title}",
        "",
        f"Severity: {_line(document.get('severity', 'unknown'))}",
        f"State:    {_line(document.get('state', 'unknown'))}",
    ]
    if document.get("fixed_in"):
        lines.append(f"Fixed in: {_line(document['fixed_in'])}")
    if document.get("url"):
        lines.append(f"Details:  {_line(document['url'])}")
    lines += [
        f"Revision: {payload.get('revision', '?')}",
        "",
        (
            "You receive this because these affected images were pulled with "
            "credentials you are the contact for:"
        ),
        "",
    ]
    for image in payload.get("images") or []:
        lines.append(
            f"  {_line(image.get('repository', '?'))}@{_line(image.get('digest', '?'))}"
        )
        lines.append(
            f"      pulled by {_line(image.get('identity', '?'))}, "
            f"last pull {_when(image.get('last_pull'))}"
        )
    description = str(document.get("description") or "").strip()
    if description:
        lines += ["", description]
    lines += [
        "",
        "Your inbox on the registry lists every advisory about images you pulled:",
        f"  cargohold notices --registry {where} --username <you>",
        f"  (or GET {registry_url or ''}/api/v1/notices with your credentials).",
        "",
        "This message was sent automatically by the registry; replies are not read.",
    ]
    return "\n".join(lines) + "\n"


def _header(value: str) -> str:
    """ASCII as is; anything else RFC 2047-encoded."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def compose(
    item: OutboxItem, sender: str, *, registry_url: str | None = None
) -> tuple[str, MIMEText]:
    """The recipient and the message for one ``email`` outbox item.

    Built with the ``compat32`` classes: a tenth of the CPU of ``EmailMessage``'s
    header objects, which matters at thousands of messages a minute. Every header
    value passes ``_line`` first, so no value can add a header.

    Raises:
        DeliveryFailed: (permanent) the payload has no usable recipient address.
    """
    payload = item.payload
    to = str(payload.get("to") or "")
    _name, address = parseaddr(to)
    local, at, domain = address.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or address != to.strip()
        or any(c.isspace() or c in '<>,;"' for c in address)
    ):
        raise DeliveryFailed(f"bad recipient address {to!r}", permanent=True)
    document: dict[str, Any] = payload.get("document") or {}
    advisory = _line(payload.get("advisory", document.get("advisory", "")))
    severity = _line(document.get("severity", "advisory"))
    title = _line(document.get("title", ""))
    message = MIMEText(_body(payload, registry_url), "plain", "utf-8")
    message["From"] = sender
    message["To"] = address
    message["Subject"] = _header(f"[{severity}] {advisory}: {title}")
    message["Message-ID"] = message_id(item.key, sender)
    message["Date"] = formatdate(usegmt=True)
    # RFC 3834: no vacation or out-of-office replies to this.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Cargohold-Advisory"] = _header(
        f"{advisory}; revision={_line(payload.get('revision'))}"
    )
    return address, message


def _refused(exc: aiosmtplib.SMTPResponseException, what: str) -> DeliveryFailed:
    text = f"{what}: {exc.code} {_line(exc.message)}"
    return DeliveryFailed(text, permanent=500 <= exc.code < 600)  # noqa: PLR2004


class EmailSender:
    """Sends ``email`` outbox items; ``deliver`` is the channel's handler."""

    def __init__(
        self, settings: SmtpSettings, *, registry_url: str | None = None
    ) -> None:
        """``registry_url``: where recipients reach the registry
        (``server.public_url``), named in the message's pointer to their inbox."""
        if settings.host is None:
            msg = "smtp.host is not set"
            raise ValueError(msg)
        self._settings = settings
        self._registry_url = registry_url
        # The envelope's MAIL FROM: the bare address of ``sender``.
        self._envelope_sender = parseaddr(settings.sender)[1] or settings.sender
        self._slots = anyio.Semaphore(max(1, settings.connections))
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def deliver(self, item: OutboxItem) -> None:
        recipient, message = compose(
            item, self._settings.sender, registry_url=self._registry_url
        )
        content = message.as_bytes()
        async with self._slots:
            client = await self._acquire()
            try:
                await client.sendmail(self._envelope_sender, [recipient], content)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await self._release(client)
                first = exc.recipients[0]
                raise _refused(first, f"recipient {first.recipient} refused") from exc
            except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
                await self._release(client)
                raise _refused(exc, "message refused") from exc
            except aiosmtplib.SMTPResponseException as exc:
                await _close(client)
                raise DeliveryFailed(
                    f"SMTP server refused: {exc.code} {_line(exc.message)}"
                ) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                await _close(client)
                raise DeliveryFailed(f"SMTP error: {_line(exc)}") from exc
            await self._release(client)

    async def _acquire(self) -> aiosmtplib.SMTP:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if not client.is_connected or now - since > _DROP_AFTER:
                await _close(client)
                continue
            if now - since > _CHECK_AFTER:
                try:
                    await client.noop()
                except (aiosmtplib.SMTPException, OSError):
                    await _close(client)
                    continue
            return client
        return await self._connect()

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.security == "tls",
            start_tls=True if s.security == "starttls" else False,  # noqa: SIM210
            cert_bundle=str(s.ca_file) if s.ca_file is not None else None,
            timeout=s.timeout_seconds,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as exc:
            await _close(client)
            raise DeliveryFailed(
                f"SMTP server {s.host}:{s.port} refused the session: "
                f"{exc.code} {_line(exc.message)}"
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _close(client)
            raise DeliveryFailed(
                f"cannot connect to SMTP server {s.host}:{s.port}: {_line(exc)}"
            ) from exc
        return client

    async def _release(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected:
            self._idle.append((client, time.monotonic()))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await _close(client, polite=True)


async def _close(client: aiosmtplib.SMTP, *, polite: bool = False) -> None:
    if polite and client.is_connected:
        try:
            with anyio.fail_after(2):
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        else:
            return
    client.close()
