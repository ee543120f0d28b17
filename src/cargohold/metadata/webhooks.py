"""``WebhookIndex``: webhooks, their delivery log and their outbox messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cargohold.metadata.outbox import OutboxMessage


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: str
    organization: str | None  # None: registry-wide
    url: str
    events: tuple[str, ...]
    repositories: tuple[str, ...]  # globs; empty: every repository it may hear
    secret: str
    previous_secret: str | None
    previous_until: float | None
    batch_pulls: bool
    disabled: bool
    created_by: str
    created_at: float


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int  # 0 before it is stored
    webhook: str
    message_id: str
    event: str
    attempt: int
    at: float
    status_code: int | None
    error: str | None
    duration_ms: float


class WebhookIndex(Protocol):
    """Every change to ``webhooks`` moves ``version()`` in the same transaction."""

    async def create(self, record: WebhookRecord) -> None: ...

    async def get(self, webhook_id: str) -> WebhookRecord | None: ...

    async def query(self, organization: str | None) -> list[WebhookRecord]:
        """An organization's webhooks (``None``: the registry-wide ones), oldest
        first."""
        ...

    async def enabled(self) -> list[WebhookRecord]:
        """Every webhook not disabled, of every organization."""
        ...

    async def delete(self, webhook_id: str) -> bool:
        """Delete a webhook and its delivery log; False if there was none."""
        ...

    async def set_disabled(self, webhook_id: str, *, disabled: bool) -> bool: ...

    async def rotate(
        self, webhook_id: str, secret: str, *, previous_until: float
    ) -> bool:
        """Make ``secret`` the signing secret; the old one signs until
        ``previous_until``."""
        ...

    async def version(self) -> int:
        """A number that changes with every change to any webhook."""
        ...

    async def enqueue(self, messages: Sequence[OutboxMessage], *, now: float) -> None:
        """Enqueue outbox messages in one transaction (existing keys are skipped)."""
        ...

    async def record_delivery(self, delivery: DeliveryRecord) -> None: ...

    async def deliveries(
        self, webhook_id: str, *, before_id: int | None, limit: int
    ) -> list[DeliveryRecord]:
        """A webhook's delivery attempts, newest first, ids below ``before_id``."""
        ...
