"""Who pulled what: recording manifest pulls off the hot path, reading them back, and
their retention.

* ``PullRecorder`` takes a pull from the request in O(1) and never blocks it: pulls wait
  in a bounded in-process queue (``pulls.max_queue``; when full, new ones are dropped
  and counted in the log) and are written every ``pulls.flush_interval_seconds`` in one
  transaction (events plus their ``pull_daily`` aggregates), then emitted to the
  ``EventSink`` as ``pull`` events. What is queued is lost if the process is killed:
  at most one flush interval of pulls. A graceful stop flushes.
* ``PullService`` decides who may read which pulls: administrators all of them, an
  organization's owners those of its repositories, everyone their own.
* Retention runs once across processes through a ``schedules`` lease.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from cargohold.auth.policy import Principal
from cargohold.metadata.accounts import AccountStore
from cargohold.metadata.pulls import DAY, PullEvent, PullFilter, PullRecord, PullStore
from cargohold.oci.errors import Denied
from cargohold.registry.admin import InvalidRequest
from cargohold.registry.clients import (
    anonymous_identity,
    client_address,
    parse_networks,
)
from cargohold.registry.events import NULL_SINK, PULL, EventSink, RegistryEvent
from cargohold.registry.limits import RepositoryAccess
from cargohold.registry.schedules import Scheduler, ScheduleStore
from cargohold.registry.useragent import parse_user_agent
from cargohold.settings import PullSettings

log = structlog.get_logger(__name__)

RETENTION_JOB = "pulls.retention"
RETENTION_EVERY = 3600.0  # seconds between retention runs (across all processes)
RETENTION_LEASE = 900.0
PRUNE_BATCH = 5000
MAX_PRUNE_BATCHES = 200  # per run; what is left waits for the next run
MAX_PAGE = 1000
_UA_CACHE = 1024
# Queued pulls turned into events between two turns of the event loop at a flush (a
# second's worth at thousands of pulls a second would otherwise hold it ~20 ms).
_CONVERT_CHUNK = 500


@dataclass(frozen=True, slots=True)
class _Seen:
    """A pull as the request hands it over; parsed and resolved at flush."""

    at: float
    kind: str
    subject: str
    repository: str
    reference: str
    digest: str
    method: str
    client: str
    user_agent: str


class PullRecorder:
    """The bounded queue between manifest GETs and the ``pull_events`` table."""

    def __init__(
        self,
        store: PullStore,
        settings: PullSettings,
        *,
        sink: EventSink = NULL_SINK,
    ) -> None:
        self._store = store
        self._settings = settings
        self._sink = sink
        self._queue: deque[_Seen] = deque()
        self._dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._agents: dict[str, tuple[str, str, str]] = {}

    @property
    def pending(self) -> int:
        return len(self._queue)

    def add(self, seen: _Seen) -> None:
        """Queue one pull; never blocks, never raises (a full queue drops it)."""
        if len(self._queue) >= self._settings.max_queue:
            self._dropped += 1
        else:
            self._queue.append(seen)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.flush_interval_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("pull events flush failed")

    def _agent(self, header: str) -> tuple[str, str, str]:
        parsed = self._agents.get(header)
        if parsed is None:
            agent = parse_user_agent(header)
            parsed = (agent.tool, agent.version, agent.platform)
            if len(self._agents) >= _UA_CACHE:
                self._agents.clear()
            self._agents[header] = parsed
        return parsed

    def _event(self, seen: _Seen) -> PullEvent:
        settings = self._settings
        client = seen.client
        if seen.kind in {"anonymous", "open"}:
            kind = "anonymous"
            identity = anonymous_identity(
                seen.client,
                granularity=settings.anonymous_granularity,
                ipv4_prefix=settings.ipv4_prefix,
                ipv6_prefix=settings.ipv6_prefix,
            )
            # Per network: the address itself is kept nowhere.
            client = identity.removeprefix("anonymous:")
        else:
            kind, identity = seen.kind, seen.subject
        tool, version, platform = self._agent(seen.user_agent)
        return PullEvent(
            at=seen.at,
            identity=identity,
            kind=kind,
            repository=seen.repository,
            reference=seen.reference,
            digest=seen.digest,
            method=seen.method,
            client=client,
            user_agent=seen.user_agent,
            tool=tool,
            tool_version=version,
            platform=platform,
        )

    async def flush(self) -> int:
        """Write what is queued (one transaction), then emit it; the count written."""
        async with self._lock:
            if self._dropped:
                log.warning(
                    "pull queue full; pull events dropped",
                    dropped=self._dropped,
                    max_queue=self._settings.max_queue,
                )
                self._dropped = 0
            if not self._queue:
                return 0
            taken = [self._queue.popleft() for _ in range(len(self._queue))]
            events: list[PullEvent] = []
            for start in range(0, len(taken), _CONVERT_CHUNK):
                if start:
                    await asyncio.sleep(0)  # let requests in between chunks
                chunk = taken[start : start + _CONVERT_CHUNK]
                events.extend(self._event(s) for s in chunk)
            try:
                records = await self._store.record(events)
            except Exception:
                log.exception("pull events not written; lost", count=len(taken))
                return 0
            await self._emit(records)
            return len(records)

    async def _emit(self, records: list[PullRecord]) -> None:
        if not await self._sink.wants(PULL):
            return  # no webhook hears pulls: no event built (a uuid each)
        events = [
            RegistryEvent(
                id=f"pull:{uuid.uuid4().hex}",
                type=PULL,
                at=r.event.at,
                actor=r.event.identity,
                repository=r.event.repository,
                organization=r.organization,
                data={
                    "reference": r.event.reference,
                    "digest": r.event.digest,
                    "method": r.event.method,
                    "tool": r.event.tool,
                    "tool_version": r.event.tool_version,
                    "platform": r.event.platform,
                },
            )
            for r in records
        ]
        try:
            await self._sink.emit(events)
        except Exception:
            log.exception("pull events not emitted", count=len(events))

    async def close(self) -> None:
        """Stop the flush loop and write whatever is queued."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


@dataclass(frozen=True, slots=True)
class PullPage:
    pulls: list[PullRecord]
    next: str | None  # the cursor of the next page; None: this was the last


def encode_cursor(record: PullRecord) -> str:
    raw = f"{record.event.at!r}:{record.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, row_id = raw.partition(":")
        return float(at), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("'next' is not a cursor this API gave out") from None


class PullService:
    def __init__(
        self,
        store: PullStore,
        accounts: AccountStore,
        schedules: ScheduleStore,
        settings: PullSettings,
        *,
        trusted_proxies: tuple[str, ...] = (),
        sink: EventSink = NULL_SINK,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self.settings = settings
        self._trusted = parse_networks(trusted_proxies)
        self._clock = clock
        self.recorder = PullRecorder(store, settings, sink=sink)
        self.scheduler = Scheduler(schedules, clock=clock)

    # -- recording (the hot path) ------------------------------------------------------

    def note(
        self,
        access: RepositoryAccess,
        reference: str,
        digest: str,
        *,
        method: str,
        peer: str,
        forwarded_for: str | None,
        user_agent: str,
    ) -> None:
        """Note that ``access``'s caller was served ``digest``; O(1), no I/O."""
        settings = self.settings
        if not settings.enabled or (method == "HEAD" and not settings.record_head):
            return
        client = (
            peer
            if not forwarded_for
            else client_address(peer, forwarded_for, self._trusted)
        )
        principal = access.principal
        self.recorder.add(
            _Seen(
                self._clock(),
                principal.kind,
                principal.subject,
                access.repository.value,
                reference,
                digest,
                method,
                client,
                user_agent,
            )
        )

    @property
    def trusts_proxies(self) -> bool:
        """Whether ``X-Forwarded-For`` can count (``server.trusted_proxies`` is set)."""
        return bool(self._trusted)

    # -- reading -----------------------------------------------------------------------

    async def _owned(self, actor: Principal) -> tuple[str, ...]:
        if actor.kind != "user":
            return ()
        return tuple(
            sorted(
                {
                    grant.organization
                    for grant in await self._accounts.grants.for_principal(
                        actor.subject
                    )
                    if grant.role == "owner"
                    and grant.repository == f"{grant.organization}/*"
                    and grant.tags is None
                }
            )
        )

    async def pulls(
        self, actor: Principal, where: PullFilter, *, limit: int, cursor: str | None
    ) -> PullPage:
        """Pulls ``actor`` may read: all for an administrator, those of repositories
        in organizations they own for an owner; anyone else is refused."""
        if not actor.is_admin:
            owned = await self._owned(actor)
            if where.repository is not None:
                namespace = where.repository.split("/", 1)[0]
                if namespace not in owned:
                    raise Denied(f"only an owner of {namespace!r} may read its pulls")
            elif not owned:
                raise Denied("only administrators and organization owners read pulls")
            where = PullFilter(
                where.repository,
                where.digest,
                where.reference,
                where.identity,
                where.since,
                where.until,
                owned,
            )
        return await self._page(where, limit, cursor)

    async def my_pulls(
        self, actor: Principal, where: PullFilter, *, limit: int, cursor: str | None
    ) -> PullPage:
        """``actor``'s own pulls, whoever they are."""
        mine = PullFilter(
            where.repository,
            where.digest,
            where.reference,
            actor.subject,
            where.since,
            where.until,
        )
        return await self._page(mine, limit, cursor)

    async def _page(
        self, where: PullFilter, limit: int, cursor: str | None
    ) -> PullPage:
        await self.recorder.flush()  # what this process holds is visible at once
        limit = max(1, min(limit, MAX_PAGE))
        before = decode_cursor(cursor) if cursor else None
        rows = await self._store.query(where, limit=limit + 1, before=before)
        more = len(rows) > limit
        rows = rows[:limit]
        return PullPage(rows, encode_cursor(rows[-1]) if more else None)

    # -- retention ---------------------------------------------------------------------

    async def prune(self) -> tuple[int, int]:
        """Delete events and aggregates past retention, in bounded batches; the
        counts deleted."""
        now = self._clock()
        events_before = now - self.settings.retention_days * DAY
        daily_before = int((now // DAY) - self.settings.aggregate_retention_days)
        total = [0, 0]
        for _ in range(MAX_PRUNE_BATCHES):
            events, daily = await self._store.prune(
                events_before=events_before,
                daily_before=daily_before,
                batch=PRUNE_BATCH,
            )
            total[0] += events
            total[1] += daily
            if events < PRUNE_BATCH and daily < PRUNE_BATCH:
                break
        if any(total):
            log.info("pull retention", events=total[0], daily=total[1])
        return total[0], total[1]

    async def retention(self) -> bool:
        """Run ``prune`` if this process wins the hourly lease; True if it ran."""
        return await self.scheduler.run_if_due(
            RETENTION_JOB,
            self.prune,
            every=RETENTION_EVERY,
            lease_seconds=RETENTION_LEASE,
        )
