"""Periodic jobs that run once across every server process (retention, sweeps).

Every process runs the same background loop; before doing a job it asks the
``ScheduleStore`` for the job's lease. Exactly one process gets a due job; the others
see ``False`` and wait for their next tick. Nothing is held in memory: a process killed
while it holds a lease only delays the job until the lease runs out.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class ScheduleStore(Protocol):
    async def try_acquire(
        self, name: str, holder: str, now: float, lease_seconds: float
    ) -> bool:
        """Take job ``name`` for ``holder`` until ``now + lease_seconds``.

        True only if the job is due (``next_run_at <= now``, or it never ran) and no
        one holds an unexpired lease on it; of several concurrent callers at most one
        gets True.
        """
        ...

    async def finish(self, name: str, holder: str, next_run_at: float) -> bool:
        """Release ``name`` and make it due again at ``next_run_at``; False (and no
        change) if ``holder`` no longer holds it."""
        ...


def holder_name() -> str:
    """This process's name on a lease: host, pid and a random part."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """Runs named jobs at most once per period across processes."""

    def __init__(
        self,
        store: ScheduleStore,
        *,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.holder = holder or holder_name()
        self._clock = clock

    async def run_if_due(
        self,
        name: str,
        job: Callable[[], Awaitable[object]],
        *,
        every: float,
        lease_seconds: float,
    ) -> bool:
        """Run ``job`` if this process wins ``name``'s lease; True if it ran.

        A failing job is retried at its next period, not sooner.
        """
        now = self._clock()
        if not await self._store.try_acquire(name, self.holder, now, lease_seconds):
            return False
        try:
            await job()
        finally:
            await self._store.finish(name, self.holder, self._clock() + every)
        return True
