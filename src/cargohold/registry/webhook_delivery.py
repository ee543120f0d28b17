"""Webhook events on the way out: which webhooks hear an event, and delivering one.

* ``WebhookDispatcher`` is the registry's ``EventSink``: it matches each event against
  the enabled webhooks (the event's organization's and the registry-wide ones; event
  type; repository globs) and enqueues one outbox message per (webhook, event) with key
  ``webhook:<webhook id>:<event id>``; pull events for a webhook with ``batch_pulls`` go
  as one message per (webhook, emitted batch). The webhook list is cached in the
  process and reloaded when the database's change counter moves, which is read at most
  once a second: a webhook created through another process hears events within ~1 s.
* ``WebhookSender.deliver`` handles outbox channel ``webhook``: a CloudEvents 1.0
  structured JSON event (a JSON array of them for a pull batch, ``application/
  cloudevents-batch+json``) signed per Standard Webhooks, POSTed with httpx, every
  attempt written to the delivery log. 2xx: done; 410: the webhook is disabled and the
  message given up; anything else: ``WebhookDeliveryFailed`` (retried with backoff).

Managing webhooks (who may, what is checked) is ``registry/webhooks.py``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, Protocol
from urllib.parse import urlsplit

import anyio.to_thread
import httpx
import structlog
from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from standardwebhooks import Webhook

from cargohold.metadata.outbox import WEBHOOK, OutboxMessage
from cargohold.metadata.webhooks import DeliveryRecord, WebhookIndex, WebhookRecord
from cargohold.registry.admin import InvalidRequest
from cargohold.registry.events import PULL, RegistryEvent
from cargohold.registry.outbox import DeliveryFailed
from cargohold.settings import WebhookSettings

log = structlog.get_logger(__name__)

PING = "ping"
TYPE_PREFIX = "dev.cargohold."
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
MAX_URL_LENGTH = 2048
MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 255
MAX_KEY_LENGTH = 255
# How often a process asks the database whether any webhook changed.
REFRESH_SECONDS = 1.0
MAX_ERROR_LENGTH = 500
HTTP_GONE = 410


# -- the outbox item and failure ------------------------------------------------------


class OutboxItemLike(Protocol):
    """What ``deliver`` reads of an outbox item (``registry/outbox.OutboxItem``)."""

    @property
    def id(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def attempts(self) -> int: ...  # attempts made before this one


class WebhookDeliveryFailed(DeliveryFailed):
    """This attempt failed; ``permanent``: retrying cannot help (the outbox buries
    the message)."""


# -- pure helpers ---------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_id(key: str) -> str:
    """The ``webhook-id`` of an outbox message: stable, so retries carry the same."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def outbox_key(webhook_id: str, what: str) -> str:
    key = f"webhook:{webhook_id}:{what}"
    if len(key) > MAX_KEY_LENGTH:
        key = f"webhook:{webhook_id}:h:{hashlib.sha256(what.encode()).hexdigest()}"
    return key


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a global unicast address (not loopback, private,
    link-local, shared, reserved or multicast)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> tuple[str, int]:
    """``url``'s host and port if it is an http(s) URL a webhook may use.

    Raises:
        InvalidRequest: another scheme, no host, credentials in it, or too long.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest(f"'url' is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest("'url' is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest("'url' must be an http or https URL")
    if not parts.hostname:
        raise InvalidRequest("'url' has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("'url' may not carry credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal address is itself)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    infos = await anyio.to_thread.run_sync(
        lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    )
    return sorted({str(info[4][0]) for info in infos})


def event_json(event: RegistryEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "at": event.at,
        "actor": event.actor,
        "repository": event.repository,
        "organization": event.organization,
        "data": dict(event.data),
    }


def cloud_event(event: Mapping[str, Any], *, source: str) -> CloudEvent:
    """The CloudEvents 1.0 form of a serialised ``RegistryEvent``."""
    attributes: dict[str, Any] = {
        "id": event["id"],
        "source": source,
        "type": TYPE_PREFIX + event["type"],
        "specversion": "1.0",
        "time": datetime.fromtimestamp(event["at"], tz=UTC),
        "datacontenttype": "application/json",
    }
    if event.get("repository"):
        attributes["subject"] = event["repository"]
    data = {
        "actor": event.get("actor"),
        "repository": event.get("repository"),
        "organization": event.get("organization"),
        **event.get("data", {}),
    }
    return CloudEvent(attributes=attributes, data=data)


def matches(webhook: WebhookRecord, event: RegistryEvent) -> bool:
    """Whether ``webhook`` hears ``event``. Repository globs filter only events of a
    repository; an advisory event reaches every webhook of its organization."""
    if webhook.disabled or event.type not in webhook.events:
        return False
    if webhook.organization is not None and webhook.organization != event.organization:
        return False
    if webhook.repositories and event.repository is not None:
        return any(fnmatchcase(event.repository, g) for g in webhook.repositories)
    return True


def messages_for(
    webhooks: Sequence[WebhookRecord], events: Sequence[RegistryEvent]
) -> list[OutboxMessage]:
    """One message per (webhook, event); a batching webhook's pulls in one message."""
    messages: list[OutboxMessage] = []
    for webhook in webhooks:
        heard = [e for e in events if matches(webhook, e)]
        if not heard:
            continue
        pulls = [e for e in heard if e.type == PULL] if webhook.batch_pulls else []
        for event in heard:
            if pulls and event.type == PULL:
                continue
            messages.append(
                OutboxMessage(
                    outbox_key(webhook.id, event.id),
                    WEBHOOK,
                    {"webhook": webhook.id, "event": event_json(event)},
                )
            )
        if pulls:
            ids = "\n".join(sorted(e.id for e in pulls))
            batch = hashlib.sha256(ids.encode()).hexdigest()[:32]
            messages.append(
                OutboxMessage(
                    outbox_key(webhook.id, f"pulls:{batch}"),
                    WEBHOOK,
                    {"webhook": webhook.id, "events": [event_json(e) for e in pulls]},
                )
            )
    return messages


# -- the dispatcher (EventSink) -------------------------------------------------------


class WebhookDispatcher:
    """Turns registry events into outbox messages for the webhooks that hear them."""

    def __init__(
        self,
        index: WebhookIndex,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self._index = index
        self._clock = clock
        self._monotonic = monotonic
        self._refresh = refresh_seconds
        self._checked_at: float | None = None
        self._version: int | None = None
        self._webhooks: list[WebhookRecord] = []

    async def webhooks(self) -> list[WebhookRecord]:
        """The enabled webhooks, as of at most ``refresh_seconds`` ago."""
        now = self._monotonic()
        if self._checked_at is None or now - self._checked_at >= self._refresh:
            self._checked_at = now
            version = await self._index.version()
            if version != self._version:
                # Read after the version: a change in between is caught next time.
                self._webhooks = await self._index.enabled()
                self._version = version
        return self._webhooks

    def forget(self) -> None:
        """Reload on the next event (this process changed a webhook)."""
        self._checked_at = None

    async def outbox_messages(
        self, events: Sequence[RegistryEvent]
    ) -> list[OutboxMessage]:
        """The outbox messages for ``events``, for a caller that enqueues them in its
        own transaction (``OutboxSink``); raises if the webhooks cannot be read."""
        if not events:
            return []
        return messages_for(await self.webhooks(), events)

    async def wants(self, event_type: str) -> bool:
        try:
            return any(event_type in w.events for w in await self.webhooks())
        except Exception:
            log.exception("webhooks not read; events of this kind go out anyway")
            return True

    async def emit(self, events: Sequence[RegistryEvent]) -> None:
        try:
            messages = await self.outbox_messages(events)
            if messages:
                await self._index.enqueue(messages, now=self._clock())
        except Exception:
            log.exception("webhook events not enqueued", count=len(events))


# -- delivering -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: float
    permanent: bool = False  # refused before sending: retrying cannot help

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300  # noqa: PLR2004


class WebhookSender:
    """Delivers outbox messages of channel ``webhook``."""

    def __init__(
        self,
        index: WebhookIndex,
        settings: WebhookSettings,
        *,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._index = index
        self._settings = settings
        self._clock = clock
        self._client = client or httpx.AsyncClient(
            timeout=settings.timeout_seconds, follow_redirects=False
        )
        self._own_client = client is None

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def signature(self, webhook: WebhookRecord, msg_id: str, at: int, body: str) -> str:
        """The ``webhook-signature`` header: the current secret's, and the previous
        one's while it is within its overlap."""
        when = datetime.fromtimestamp(at, tz=UTC)
        keys = [webhook.secret]
        if (
            webhook.previous_secret
            and webhook.previous_until is not None
            and self._clock() < webhook.previous_until
        ):
            keys.append(webhook.previous_secret)
        return " ".join(Webhook(k).sign(msg_id, when, body) for k in keys)

    def request(
        self, webhook: WebhookRecord, payload: Mapping[str, Any], msg_id: str
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body of one delivery."""
        source = self._settings.source
        if "events" in payload:
            documents = [
                json.loads(to_structured_event(cloud_event(e, source=source)).body)
                for e in payload["events"]
            ]
            body = json.dumps(documents, separators=(",", ":")).encode()
            headers = {"content-type": BATCH_CONTENT_TYPE}
        else:
            message = to_structured_event(
                cloud_event(payload["event"], source=source), JSONFormat()
            )
            body, headers = message.body, dict(message.headers)
        at = int(time.time())  # receivers check it against their own clock
        headers |= {
            "webhook-id": msg_id,
            "webhook-timestamp": str(at),
            "webhook-signature": self.signature(webhook, msg_id, at, body.decode()),
            "user-agent": "cargohold-webhooks",
        }
        return headers, body

    async def _guard(self, url: str) -> None:
        try:
            host, port = check_url(url)
        except InvalidRequest as exc:
            raise WebhookDeliveryFailed(str(exc), permanent=True) from None
        if self._settings.allow_private_networks:
            return
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise WebhookDeliveryFailed(f"cannot resolve {host}: {exc}") from None
        refused = [a for a in addresses if not is_public_address(a)]
        if refused or not addresses:
            raise WebhookDeliveryFailed(
                f"{host} resolves to a non-public address ({', '.join(refused)}); "
                "set webhooks.allow_private_networks to allow it",
                permanent=True,
            )

    async def send(
        self,
        webhook: WebhookRecord,
        payload: Mapping[str, Any],
        *,
        msg_id: str,
        attempt: int,
    ) -> Outcome:
        """POST one delivery and log the attempt; never raises for the receiver."""
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        permanent = False
        try:
            await self._guard(webhook.url)
            headers, body = self.request(webhook, payload, msg_id)
            response = await self._client.post(
                webhook.url,
                content=body,
                headers=headers,
                timeout=self._settings.timeout_seconds,
            )
            status = response.status_code
            if not 200 <= status < 300:  # noqa: PLR2004
                error = f"receiver answered {status}"
        except WebhookDeliveryFailed as exc:
            error, permanent = str(exc), exc.permanent
        except httpx.TimeoutException:
            error = f"no answer within {self._settings.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        elapsed = (time.perf_counter() - started) * 1000
        outcome = Outcome(status, error, elapsed, permanent=permanent)
        events = payload.get("events")
        event_type = "pull" if events is not None else str(payload["event"]["type"])
        await self._index.record_delivery(
            DeliveryRecord(
                id=0,
                webhook=webhook.id,
                message_id=msg_id,
                event=event_type[:64],
                attempt=attempt,
                at=self._clock(),
                status_code=status,
                error=error,
                duration_ms=outcome.duration_ms,
            )
        )
        return outcome

    async def deliver(self, item: OutboxItemLike) -> None:
        """Deliver one outbox message of channel ``webhook``.

        Raises:
            WebhookDeliveryFailed: the receiver did not take it (retryable), or never
                will (``permanent``: it answered 410, and the webhook is now disabled;
                or its address is not public).
        """
        webhook = await self._index.get(str(item.payload["webhook"]))
        if webhook is None or webhook.disabled:
            return  # deleted or disabled since: nothing to deliver
        outcome = await self.send(
            webhook,
            item.payload,
            msg_id=message_id(item.key),
            attempt=item.attempts + 1,
        )
        if outcome.ok:
            return
        if outcome.status_code == HTTP_GONE:
            await self._index.set_disabled(webhook.id, disabled=True)
            log.warning(
                "webhook disabled: its receiver answered 410", webhook=webhook.id
            )
            raise WebhookDeliveryFailed(
                "receiver answered 410 Gone; webhook disabled", permanent=True
            )
        raise WebhookDeliveryFailed(
            outcome.error or "failed", permanent=outcome.permanent
        )
