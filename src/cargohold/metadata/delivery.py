"""The ``OutboxStore`` and ``NoticeStore`` protocols: the outbox's rows and the inbox.

Rows are enqueued by ``metadata/outbox.enqueue_in`` in the transaction that decides a
message; this store is the worker's side. A worker *leases* due rows (it becomes their
``holder`` until ``lease_until``), delivers them, then *settles* each one. Settling is
conditional on the lease still being the worker's (same holder, same ``lease_until``):
a worker whose lease ran out and whose rows another worker took can no longer change
them. Each method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cargohold.metadata.outbox import OutboxMessage


@dataclass(frozen=True, slots=True)
class Leased:
    """A row this worker holds until ``lease_until``; ``attempts`` made so far."""

    id: int
    key: str
    channel: str
    payload: dict[str, Any]
    attempts: int
    lease_until: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one leased delivery ended.

    ``retry_at`` ``None`` with ``error`` set: dead (given up); with ``error`` ``None``:
    delivered (done).
    """

    id: int
    lease_until: float
    error: str | None = None
    retry_at: float | None = None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    key: str
    channel: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    updated_at: float


class OutboxStore(Protocol):
    async def lease(
        self,
        holder: str,
        channels: Sequence[str],
        *,
        now: float,
        lease_seconds: float,
        limit: int,
    ) -> list[Leased]:
        """Take up to ``limit`` pending rows of ``channels`` that are due.

        Due: ``next_attempt_at <= now`` and no live lease (``lease_until <= now``).
        Oldest due first. Two workers never get the same row while its lease lasts
        (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the single writer).
        """
        ...

    async def settle(
        self, holder: str, outcomes: Sequence[Outcome], *, now: float
    ) -> int:
        """Record ``outcomes`` of rows ``holder`` leased; returns how many applied.

        Done and failed rows count one more attempt; a failed one gets ``retry_at`` as
        its next attempt, or becomes ``dead`` when ``retry_at`` is ``None``. An outcome
        whose lease is no longer ``holder``'s (taken again after it ran out) or whose
        row is no longer pending is ignored.
        """
        ...

    async def release(self, holder: str, *, now: float) -> int:
        """Give up ``holder``'s leases on pending rows (a worker stopping): another
        worker may take them at once instead of when the leases run out."""
        ...

    async def messages(
        self, *, state: str | None, after_id: int, limit: int
    ) -> list[OutboxRecord]:
        """Rows by ascending id after ``after_id``, of ``state`` (``None``: any)."""
        ...

    async def retry(self, message_id: int, *, now: float) -> bool:
        """A dead row becomes pending and due at ``now``; ``False`` if not dead."""
        ...

    async def enqueue(self, messages: Sequence[OutboxMessage], *, now: float) -> None:
        """Enqueue ``messages`` on their own (keys already queued are skipped): for
        work decided by a job rather than by a change (``enqueue_in`` is the rule)."""
        ...

    async def prune(self, *, done_before: float) -> int:
        """Delete ``done`` rows last updated before ``done_before``."""
        ...


@dataclass(frozen=True, slots=True)
class NoticeRecord:
    id: int
    identity: str
    advisory: str
    revision: int
    document: dict[str, Any]
    created_at: float
    read_at: float | None


class NoticeStore(Protocol):
    async def for_identity(
        self, identity: str, *, unread: bool, limit: int
    ) -> list[NoticeRecord]:
        """``identity``'s notices, newest first; only unread ones if ``unread``."""
        ...

    async def mark_read(self, identity: str, notice_id: int, *, now: float) -> bool:
        """Mark one of ``identity``'s notices read (kept if already read).

        ``False`` if ``identity`` has no notice ``notice_id``.
        """
        ...

    async def mark_all_read(self, identity: str, *, now: float) -> int:
        """Mark every unread notice of ``identity`` read; returns how many."""
        ...
