"""Webhooks: who may manage them, and the checks on what they ask for.

``WebhookService`` manages webhooks: an organization's (its owners and the
administrators) and registry-wide ones (administrators only). The signing secret is
returned on create and on rotate, never again; after a rotation the previous secret
keeps signing alongside the new one for ``webhooks.rotation_overlap_hours``. Matching
events and delivering them is ``registry/webhook_delivery.py``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase

import structlog

from cargohold.auth.policy import Principal
from cargohold.metadata.accounts import AccountStore
from cargohold.metadata.webhooks import DeliveryRecord, WebhookIndex, WebhookRecord
from cargohold.registry.admin import AdminService, InvalidRequest, NotFound
from cargohold.registry.audit import AuditTrail
from cargohold.registry.events import EVENT_TYPES, RegistryEvent
from cargohold.registry.webhook_delivery import (
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    PING,
    Outcome,
    WebhookDispatcher,
    WebhookSender,
    check_url,
    event_json,
    is_public_address,
    message_id,
    new_secret,
    outbox_key,
    resolve,
)
from cargohold.settings import WebhookSettings

log = structlog.get_logger(__name__)


# -- managing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    record: WebhookRecord
    secret: str  # shown once


class WebhookService:
    """Who may manage which webhooks, and the checks on what they ask for.

    ``scope`` names an organization, or is ``None`` for the registry-wide webhooks.
    """

    def __init__(
        self,
        index: WebhookIndex,
        accounts: AccountStore,
        admin: AdminService,
        audit: AuditTrail,
        settings: WebhookSettings,
        *,
        sender: WebhookSender,
        dispatcher: WebhookDispatcher,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._index = index
        self._accounts = accounts
        self._admin = admin
        self._audit = audit
        self._settings = settings
        self._sender = sender
        self._dispatcher = dispatcher
        self._clock = clock

    async def _require(self, actor: Principal, scope: str | None) -> None:
        if scope is None:
            AdminService.require_admin(actor)
            return
        await self._admin.require_owner(actor, scope)
        if not await self._accounts.organizations.exists(scope):
            raise NotFound(f"no organization {scope!r}")

    async def _find(
        self, actor: Principal, scope: str | None, webhook_id: str
    ) -> WebhookRecord:
        await self._require(actor, scope)
        record = await self._index.get(webhook_id)
        if record is None or record.organization != scope:
            raise NotFound(f"no webhook {webhook_id[:64]!r}")
        return record

    def _record(
        self, actor: Principal, action: str, record: WebhookRecord, client: str
    ) -> None:
        target = f"{record.organization or '*'}/{record.id}"
        self._audit.record(actor.subject, action, target, client=client)

    async def _check_target(self, url: str) -> None:
        host, port = check_url(url)
        if self._settings.allow_private_networks:
            return
        try:
            addresses = await resolve(host, port)
        except OSError:
            return  # checked again at every delivery
        if host.lower() == "localhost" or any(
            not is_public_address(a) for a in addresses
        ):
            raise InvalidRequest(
                f"'url' points at a loopback, private or link-local address ({host}); "
                "the registry refuses those unless webhooks.allow_private_networks"
            )

    @staticmethod
    def _check_events(events: list[str] | None) -> tuple[str, ...]:
        if events is None:
            return EVENT_TYPES
        unknown = [e for e in events if e not in EVENT_TYPES]
        if unknown or not events:
            raise InvalidRequest(
                f"'events' must be a non-empty list of {', '.join(EVENT_TYPES)}"
            )
        return tuple(dict.fromkeys(events))

    @staticmethod
    def _check_repositories(
        scope: str | None, patterns: list[str] | None
    ) -> tuple[str, ...]:
        if not patterns:
            return ()
        if len(patterns) > MAX_PATTERNS or any(
            not 0 < len(p) <= MAX_PATTERN_LENGTH for p in patterns
        ):
            raise InvalidRequest(
                f"'repositories' holds at most {MAX_PATTERNS} globs of at most "
                f"{MAX_PATTERN_LENGTH} characters"
            )
        if scope is not None:
            outside = [p for p in patterns if not fnmatchcase(p, f"{scope}/*")]
            if outside:
                raise InvalidRequest(
                    f"'repositories' must be globs under {scope}/: {outside[0][:80]!r}"
                )
        return tuple(patterns)

    async def create(
        self,
        actor: Principal,
        scope: str | None,
        *,
        url: str,
        events: list[str] | None,
        repositories: list[str] | None,
        batch_pulls: bool,
        client: str,
    ) -> CreatedWebhook:
        await self._require(actor, scope)
        checked_events = self._check_events(events)
        checked_repositories = self._check_repositories(scope, repositories)
        await self._check_target(url)
        secret = new_secret()
        record = WebhookRecord(
            id="wh_" + secrets.token_hex(12),
            organization=scope,
            url=url,
            events=checked_events,
            repositories=checked_repositories,
            secret=secret,
            previous_secret=None,
            previous_until=None,
            batch_pulls=batch_pulls,
            disabled=False,
            created_by=actor.subject,
            created_at=self._clock(),
        )
        await self._index.create(record)
        self._dispatcher.forget()
        self._record(actor, "webhook.create", record, client)
        return CreatedWebhook(record, secret)

    async def query(self, actor: Principal, scope: str | None) -> list[WebhookRecord]:
        await self._require(actor, scope)
        return await self._index.query(scope)

    async def get(
        self, actor: Principal, scope: str | None, webhook_id: str
    ) -> WebhookRecord:
        return await self._find(actor, scope, webhook_id)

    async def delete(
        self, actor: Principal, scope: str | None, webhook_id: str, *, client: str
    ) -> None:
        record = await self._find(actor, scope, webhook_id)
        await self._index.delete(record.id)
        self._dispatcher.forget()
        self._record(actor, "webhook.delete", record, client)

    async def set_disabled(
        self,
        actor: Principal,
        scope: str | None,
        webhook_id: str,
        *,
        disabled: bool,
        client: str,
    ) -> WebhookRecord:
        record = await self._find(actor, scope, webhook_id)
        await self._index.set_disabled(record.id, disabled=disabled)
        self._dispatcher.forget()
        action = "webhook.disable" if disabled else "webhook.enable"
        self._record(actor, action, record, client)
        return await self._find(actor, scope, webhook_id)

    async def rotate(
        self, actor: Principal, scope: str | None, webhook_id: str, *, client: str
    ) -> CreatedWebhook:
        record = await self._find(actor, scope, webhook_id)
        secret = new_secret()
        until = self._clock() + self._settings.rotation_overlap_hours * 3600
        await self._index.rotate(record.id, secret, previous_until=until)
        self._record(actor, "webhook.rotate", record, client)
        return CreatedWebhook(await self._find(actor, scope, webhook_id), secret)

    async def test(
        self, actor: Principal, scope: str | None, webhook_id: str
    ) -> Outcome:
        """Deliver a ``ping`` event now (also when disabled) and say how it went."""
        record = await self._find(actor, scope, webhook_id)
        event_id = f"ping:{secrets.token_hex(8)}"
        event = RegistryEvent(
            id=event_id,
            type=PING,
            at=self._clock(),
            actor=actor.subject,
            repository=None,
            organization=record.organization,
            data={"webhook": record.id},
        )
        return await self._sender.send(
            record,
            {"webhook": record.id, "event": event_json(event)},
            msg_id=message_id(outbox_key(record.id, event_id)),
            attempt=1,
        )

    async def deliveries(
        self,
        actor: Principal,
        scope: str | None,
        webhook_id: str,
        *,
        before_id: int | None,
        limit: int,
    ) -> list[DeliveryRecord]:
        record = await self._find(actor, scope, webhook_id)
        return await self._index.deliveries(
            record.id, before_id=before_id, limit=max(1, min(limit, 1000))
        )
