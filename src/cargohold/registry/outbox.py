"""The outbox worker: delivers the persistent outbox's messages, at least once.

Every server process runs ``Outbox.run``. A round leases up to ``batch`` due messages
of the channels this process has a handler for (a channel with no handler, such as
``email`` with no SMTP host, simply waits), delivers them ``concurrency`` at a time,
and settles each: ``done``; or, on failure, one more attempt and the next one after an
exponential backoff with jitter; or ``dead`` after ``max_attempts`` or a permanent
failure. Settling is conditional on still holding the lease, so a worker whose lease
ran out cannot overwrite the outcome of whoever took the message next.

Crash safety: a process killed mid-delivery leaves its leases to run out
(``lease_seconds``); then any process takes those messages again. A message handed to
its receiver just before the kill and not yet settled is delivered again: that window
is the only source of duplicates, and every channel carries the outbox key (email
``Message-ID``, webhook ``webhook-id``) so receivers can recognise them.

Pruning of old ``done`` rows runs once across processes (a lease on ``schedules``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from cargohold.metadata.delivery import Outcome
from cargohold.metadata.outbox import DEAD, PENDING
from cargohold.oci.errors import Denied
from cargohold.registry.admin import NotFound
from cargohold.registry.schedules import Scheduler, holder_name

if TYPE_CHECKING:
    from cargohold.auth.policy import Principal
    from cargohold.metadata.delivery import Leased, OutboxRecord, OutboxStore
    from cargohold.registry.audit import AuditTrail
    from cargohold.settings import OutboxSettings

log = structlog.get_logger(__name__)

PRUNE_JOB = "outbox.prune"
_PRUNE_EVERY = 3600.0
# Each round of ``drain`` leases one batch; this bounds a drain whatever happens.
_MAX_DRAIN_ROUNDS = 100_000
STATES = (PENDING, DEAD, "done")
# A delivery starts only while more than this share of its lease is left.
_LEASE_MARGIN = 0.25


class DeliveryFailed(Exception):
    """A handler could not deliver; ``permanent``: do not try again."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    key: str
    channel: str
    payload: dict[str, Any]
    attempts: int  # made before this one


Handler = Callable[[OutboxItem], Awaitable[None]]


def backoff(attempts: int, *, base: float, maximum: float, jitter: float) -> float:
    """Seconds to wait after the ``attempts``-th failure (1 for the first).

    ``base * 2**(attempts - 1)``, at most ``maximum``, shortened by up to a fifth
    (``jitter`` in [0, 1)) so that messages failing together do not retry together.
    """
    exponent = min(max(attempts - 1, 0), 62)
    delay = min(maximum, base * 2.0**exponent)
    return delay * (1.0 - 0.2 * jitter)


class Outbox:
    """The worker and the outbox's administration (dead letters, retry)."""

    def __init__(
        self,
        store: OutboxStore,
        settings: OutboxSettings,
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        audit: AuditTrail | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        """``scheduler``: runs the pruning of delivered messages once across
        processes; without one, only ``prune`` called directly prunes."""
        self._store = store
        self._scheduler = scheduler
        self._audit = audit
        self._settings = settings
        self._clock = clock
        self._jitter = jitter
        self._handlers: dict[str, Handler] = {}
        self.holder = holder_name()

    def register(self, channel: str, handler: Handler) -> None:
        """Deliver ``channel``'s messages with ``handler`` in this process."""
        self._handlers[channel] = handler

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted(self._handlers))

    async def stop(self) -> None:
        """Give up this worker's leases (after ``run`` was cancelled): another
        process delivers what it held at once, not when the leases run out."""
        released = await self._store.release(self.holder, now=self._clock())
        if released:
            log.info("outbox leases released", count=released)

    async def run(self) -> None:
        """Deliver forever: full rounds back to back, else poll every interval."""
        while True:
            try:
                await self._maybe_prune()
            except Exception:
                log.exception("pruning the outbox failed; will retry")
            try:
                leased = await self._round()
            except Exception:
                log.exception("outbox round failed; will retry")
                leased = 0
            if leased < self._settings.batch:
                await anyio.sleep(self._settings.poll_interval_seconds)

    async def drain(self, *, until: float) -> int:
        """Deliver what is due until nothing is, or the clock passes ``until``.

        Returns how many messages were leased (delivered, retried later or buried).
        """
        total = 0
        for _ in range(_MAX_DRAIN_ROUNDS):
            if self._clock() > until:
                break
            leased = await self._round()
            total += leased
            if leased == 0:
                break
        return total

    async def _round(self) -> int:
        settings = self._settings
        items = await self._store.lease(
            self.holder,
            self.channels,
            now=self._clock(),
            lease_seconds=settings.lease_seconds,
            limit=settings.batch,
        )
        if not items:
            return 0
        limiter = anyio.CapacityLimiter(settings.concurrency)
        margin = settings.lease_seconds * _LEASE_MARGIN
        outcomes: list[Outcome] = []
        settled = anyio.Event()
        pending = len(items)

        async def deliver(item: Leased) -> None:
            nonlocal pending
            async with limiter:
                # A message whose lease is (nearly) over by the time its turn comes is
                # left alone: another worker may take it at any moment, and sending it
                # here too would send it twice. It is taken again when the lease ends.
                if self._clock() < item.lease_until - margin:
                    outcomes.append(await self._deliver(item))
                else:
                    log.info("outbox lease ran short; message left", key=item.key)
            pending -= 1
            settled.set()

        async def settle() -> None:
            # Group commit: whatever finished meanwhile is settled in one transaction,
            # right after it finished (the at-least-once window stays that short).
            nonlocal settled
            while True:
                await settled.wait()
                settled = anyio.Event()
                done = outcomes[:]
                del outcomes[: len(done)]
                if done:
                    await self._store.settle(self.holder, done, now=self._clock())
                if pending == 0 and not outcomes:
                    return

        async with anyio.create_task_group() as group:
            group.start_soon(settle)
            for item in items:
                group.start_soon(deliver, item)
        return len(items)

    async def _deliver(self, item: Leased) -> Outcome:
        handler = self._handlers[item.channel]
        attempt = OutboxItem(
            item.id, item.key, item.channel, item.payload, item.attempts
        )
        try:
            await handler(attempt)
        except DeliveryFailed as exc:
            return self._failed(item, exc.message, permanent=exc.permanent)
        except Exception as exc:
            log.exception("outbox handler raised", key=item.key, channel=item.channel)
            return self._failed(item, f"{type(exc).__name__}: {exc}", permanent=False)
        return Outcome(item.id, item.lease_until)

    def _failed(self, item: Leased, error: str, *, permanent: bool) -> Outcome:
        attempts = item.attempts + 1
        settings = self._settings
        if permanent or attempts >= settings.max_attempts:
            log.warning("outbox message is dead", key=item.key, error=error)
            return Outcome(item.id, item.lease_until, error=error)
        delay = backoff(
            attempts,
            base=settings.base_delay_seconds,
            maximum=settings.max_delay_seconds,
            jitter=self._jitter(),
        )
        log.info("outbox delivery failed; will retry", key=item.key, error=error)
        return Outcome(
            item.id, item.lease_until, error=error, retry_at=self._clock() + delay
        )

    async def _maybe_prune(self) -> None:
        if self._scheduler is not None:
            await self._scheduler.run_if_due(
                PRUNE_JOB,
                self.prune,
                every=_PRUNE_EVERY,
                lease_seconds=self._settings.lease_seconds,
            )

    async def prune(self) -> int:
        """Delete delivered messages older than ``keep_days``."""
        before = self._clock() - self._settings.keep_days * 86400
        pruned = await self._store.prune(done_before=before)
        if pruned:
            log.info("pruned delivered outbox messages", count=pruned)
        return pruned

    # -- administration (admins only) ----------------------------------------------

    async def messages(
        self, actor: Principal, *, state: str | None, after_id: int, limit: int
    ) -> list[OutboxRecord]:
        _admin_only(actor)
        return await self._store.messages(state=state, after_id=after_id, limit=limit)

    async def retry(
        self, actor: Principal, message_id: int, *, client: str = ""
    ) -> None:
        """A dead message is due again now, with fresh attempts (audited).

        Raises:
            NotFound: no dead message ``message_id``.
        """
        _admin_only(actor)
        if not await self._store.retry(message_id, now=self._clock()):
            raise NotFound(f"no dead outbox message {message_id}")
        if self._audit is not None:
            self._audit.record(
                actor.subject, "outbox.retry", f"outbox:{message_id}", client=client
            )


def _admin_only(actor: Principal) -> None:
    if not actor.is_admin:
        raise Denied("only administrators may see and retry the outbox")
