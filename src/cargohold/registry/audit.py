"""``AuditTrail``: appends authentication and management events to the audit log.

Events are queued and written in the background in small batches, so a burst of logins
costs one transaction, not one per login; ``close`` writes whatever is still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from cargohold.metadata.accounts import AccountStore, AuditEvent

log = structlog.get_logger(__name__)


class AuditTrail:
    def __init__(self, store: AccountStore, *, flush_interval: float = 0.2) -> None:
        self._store = store
        self._queue: asyncio.Queue[AuditEvent] = asyncio.Queue(maxsize=10_000)
        self._interval = flush_interval
        self._task: asyncio.Task[None] | None = None

    def record(
        self,
        actor: str,
        action: str,
        target: str,
        *,
        outcome: str = "ok",
        client: str = "",
        detail: str | None = None,
    ) -> None:
        event = AuditEvent(
            actor, action, target, outcome, client, detail, at=time.time()
        )
        log.info(
            "audit",
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            client=client,
        )
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.error(  # noqa: TRY400 - an expected condition: no traceback wanted
                "audit queue full; event only in the log", action=action
            )
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while not self._queue.empty():
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        events = []
        while not self._queue.empty():
            events.append(self._queue.get_nowait())
        if not events:
            return
        try:
            await self._store.audit.append(*events)
        except Exception:
            log.exception(
                "audit write failed; events only in the log", count=len(events)
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
