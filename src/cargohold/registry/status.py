"""The status page's domain: components, their checks, uptime, incidents.

* **Checks** run in one process at a time: every server process ticks, and the
  ``status.checks`` lease (``registry/schedules``) picks the one that runs a round. A
  process killed mid-round loses the lease when it runs out; another takes over.
  Each check is bounded by ``CHECK_TIMEOUT``; a round runs them concurrently.
* **Uptime** is computed from daily counts: a major outage counts fully as downtime,
  a partial outage 30 % (as Statuspage counts it), degraded performance not at all.
* **Incidents and maintenances** are managed by administrators only (checked here,
  audited), and read by anyone: they are public by design.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from cargohold.metadata.status import (
    DAY,
    DEGRADED,
    IMPACTS,
    INCIDENT,
    INCIDENT_STATUSES,
    MAINTENANCE,
    MAINTENANCE_STATUSES,
    MAJOR,
    OPERATIONAL,
    PARTIAL,
    UNDER_MAINTENANCE,
    CheckResult,
    DailyCounts,
    Incident,
    IncidentUpdate,
)
from cargohold.oci.errors import Denied
from cargohold.registry.admin import InvalidRequest, NotFound
from cargohold.registry.schedules import Scheduler

if TYPE_CHECKING:
    from cargohold.auth.policy import Principal
    from cargohold.metadata.status import StatusStore
    from cargohold.registry.audit import AuditTrail

log = structlog.get_logger(__name__)

CHECKS_JOB = "status.checks"
CHECK_TIMEOUT = 5.0  # seconds one check may take before it counts as an outage
# A check slower than this (but answering) is degraded performance.
SLOW_SECONDS = 1.0
RAW_RETENTION_DAYS = 7  # raw check rows; the daily counts stay UPTIME_DAYS
UPTIME_DAYS = 90
PARTIAL_WEIGHT = 0.3
MAX_NAME = 255
MAX_BODY = 10_000
MAX_LIST = 200
_RANK = {OPERATIONAL: 0, DEGRADED: 1, PARTIAL: 2, MAJOR: 3}
_IMPACT_STATUS = {"none": OPERATIONAL, "minor": DEGRADED, "major": PARTIAL}
_IMPACT_STATUS["critical"] = MAJOR
_CLOSED = {"resolved", "completed"}


@dataclass(frozen=True, slots=True)
class Component:
    id: str
    name: str
    description: str
    position: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one check found (``latency_ms`` is filled in by the runner)."""

    status: str
    detail: str


CheckFn = Callable[[], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Check:
    component: Component
    run: CheckFn


# -- pure roll-ups --


def worst(statuses: Sequence[str]) -> str:
    """The worst of check statuses (operational when there are none)."""
    return max(statuses, key=lambda s: _RANK.get(s, 0), default=OPERATIONAL)


def uptime(counts: DailyCounts) -> float | None:
    """The share of ``counts``' checks that were up; ``None`` without checks."""
    if counts.checks <= 0:
        return None
    down = counts.major + PARTIAL_WEIGHT * counts.partial
    return max(0.0, 1.0 - down / counts.checks)


def day_status(counts: DailyCounts | None) -> str | None:
    """The worst status seen that day; ``None``: no data."""
    if counts is None or counts.checks <= 0:
        return None
    for status, seen in (
        (MAJOR, counts.major),
        (PARTIAL, counts.partial),
        (DEGRADED, counts.degraded),
    ):
        if seen:
            return status
    return OPERATIONAL


@dataclass(frozen=True, slots=True)
class Bar:
    day: int  # days since the epoch (UTC)
    status: str | None  # None: no data that day
    uptime: float | None
    checks: int

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.day * DAY, UTC).date().isoformat()


def bars(
    daily: Sequence[DailyCounts], component: str, today: int, days: int = UPTIME_DAYS
) -> tuple[list[Bar], float | None]:
    """``days`` bars ending ``today`` for ``component``, and the uptime over the days
    that have data (``None``: no data at all)."""
    mine = {d.day: d for d in daily if d.component == component}
    out: list[Bar] = []
    checks = down = 0.0
    for day in range(today - days + 1, today + 1):
        counts = mine.get(day)
        out.append(
            Bar(
                day,
                day_status(counts),
                uptime(counts) if counts else None,
                counts.checks if counts else 0,
            )
        )
        if counts is not None and counts.checks > 0:
            checks += counts.checks
            down += counts.major + PARTIAL_WEIGHT * counts.partial
    return out, (max(0.0, 1.0 - down / checks) if checks else None)


_INDICATORS = (
    ("none", "All Systems Operational"),
    ("minor", "Minor Service Outage"),
    ("major", "Partial System Outage"),
    ("critical", "Major System Outage"),
)


def overall(
    component_statuses: Sequence[str], open_incidents: Sequence[Incident]
) -> tuple[str, str]:
    """The page's (indicator, description), Statuspage's roll-up.

    The worse of the components' state and the impact of unresolved incidents;
    everything else fine but a component under maintenance: "maintenance".
    """
    rank = max(
        (_RANK.get(s, 0) for s in component_statuses if s != UNDER_MAINTENANCE),
        default=0,
    )
    for incident in open_incidents:
        if incident.kind == INCIDENT:
            rank = max(rank, IMPACTS.index(incident.impact))
    if rank == 0 and UNDER_MAINTENANCE in component_statuses:
        return "maintenance", "Service Under Maintenance"
    return _INDICATORS[rank]


def component_status(
    component: str,
    check: CheckResult | None,
    open_items: Sequence[Incident],
    *,
    now: float,
) -> str:
    """A component's state now: its last check, made worse by unresolved incidents
    that name it, and ``under_maintenance`` inside an in-progress window."""
    status = check.status if check is not None else OPERATIONAL
    for item in open_items:
        if component not in item.components:
            continue
        if item.kind == MAINTENANCE:
            if in_window(item, now):
                return UNDER_MAINTENANCE
        else:
            status = worst([status, _IMPACT_STATUS[item.impact]])
    return status


def in_window(maintenance: Incident, now: float) -> bool:
    """In progress (or verifying), or scheduled and inside its window."""
    if maintenance.status in ("in_progress", "verifying"):
        return True
    return (
        maintenance.status == "scheduled"
        and maintenance.scheduled_for is not None
        and maintenance.scheduled_until is not None
        and maintenance.scheduled_for <= now < maintenance.scheduled_until
    )


# -- the page's state --


@dataclass(frozen=True, slots=True)
class ComponentView:
    component: Component
    status: str
    check: CheckResult | None
    bars: tuple[Bar, ...]
    uptime: float | None


@dataclass(frozen=True, slots=True)
class StatusView:
    """Everything the page, the JSON and the feed show, read at one moment."""

    name: str
    url: str
    now: float
    indicator: str
    description: str
    components: tuple[ComponentView, ...]
    open_incidents: tuple[Incident, ...]
    maintenances: tuple[Incident, ...]  # upcoming or in progress
    past_incidents: tuple[Incident, ...]
    all_incidents: tuple[Incident, ...]
    all_maintenances: tuple[Incident, ...]
    updated_at: float

    @property
    def by_id(self) -> dict[str, Component]:
        return {view.component.id: view.component for view in self.components}


def _new_id() -> str:
    # Statuspage's ids are 12 lowercase letters and digits.
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def _admin_only(actor: Principal) -> None:
    if not actor.is_admin:
        raise Denied("only administrators may manage the status page")


def _text(value: str, field: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise InvalidRequest(f"{field!r} must not be empty")
    if len(value) > limit:
        raise InvalidRequest(f"{field!r} is longer than {limit} characters")
    return value


def _choice(value: str, field: str, options: Sequence[str]) -> str:
    if value not in options:
        raise InvalidRequest(f"{field!r} must be one of {', '.join(options)}")
    return value


class StatusService:
    """Runs the checks (once across processes) and manages and reads the page."""

    def __init__(
        self,
        store: StatusStore,
        scheduler: Scheduler,
        checks: Sequence[Check],
        *,
        name: str,
        url: str,
        interval: float,
        audit: AuditTrail | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._close = close
        self._store = store
        self.scheduler = scheduler
        self.checks = tuple(checks)
        self.components = tuple(check.component for check in self.checks)
        self.name = name
        self.url = url
        self.interval = interval
        self._audit = audit
        self._clock = clock

    async def close(self) -> None:
        """Release what the checks hold (their HTTP clients)."""
        if self._close is not None:
            await self._close()

    # -- checks --

    async def tick(self) -> bool:
        """Run a round if this process wins the lease; True if it ran."""
        return await self.scheduler.run_if_due(
            CHECKS_JOB,
            self.run_checks,
            every=self.interval,
            # Longer than a round can take (every check is bounded), so the lease
            # is never lost mid-round, and short enough to pass on after a crash.
            lease_seconds=CHECK_TIMEOUT * 6,
        )

    async def run_checks(self) -> list[CheckResult]:
        """One round: every check concurrently, stored with this process's name."""
        now = self._clock()
        outcomes = await asyncio.gather(*(_timed(check.run) for check in self.checks))
        results = [
            CheckResult(
                check.component.id,
                now,
                outcome.status,
                latency,
                outcome.detail,
                self.scheduler.holder,
            )
            for check, (outcome, latency) in zip(self.checks, outcomes, strict=True)
        ]
        maintenances = await self._store.incidents(
            MAINTENANCE, limit=MAX_LIST, unresolved=True
        )
        under = frozenset(
            component
            for item in maintenances
            if in_window(item, now)
            for component in item.components
        )
        await self._store.record_checks(results, maintenance=under)
        await self._store.prune(
            checks_before=now - RAW_RETENTION_DAYS * DAY,
            days_before=int(now // DAY) - UPTIME_DAYS,
        )
        return results

    # -- reading --

    async def view(self, *, history: int = 50) -> StatusView:
        now = self._clock()
        today = int(now // DAY)
        latest = await self._store.latest_checks()
        daily = await self._store.daily(today - UPTIME_DAYS + 1)
        incidents = await self._store.incidents(INCIDENT, limit=history)
        maintenances = await self._store.incidents(MAINTENANCE, limit=history)
        open_incidents = await self._store.incidents(
            INCIDENT, limit=MAX_LIST, unresolved=True
        )
        open_maintenances = await self._store.incidents(
            MAINTENANCE, limit=MAX_LIST, unresolved=True
        )
        open_items = [*open_incidents, *open_maintenances]
        views = []
        for component in self.components:
            check = latest.get(component.id)
            component_bars, total = bars(daily, component.id, today)
            views.append(
                ComponentView(
                    component,
                    component_status(component.id, check, open_items, now=now),
                    check,
                    tuple(component_bars),
                    total,
                )
            )
        indicator, description = overall([v.status for v in views], open_items)
        stamps = [c.checked_at for c in latest.values()]
        stamps += [i.updated_at for i in (*incidents, *maintenances)]
        return StatusView(
            name=self.name,
            url=self.url,
            now=now,
            indicator=indicator,
            description=description,
            components=tuple(views),
            open_incidents=tuple(open_incidents),
            maintenances=tuple(
                sorted(open_maintenances, key=lambda m: m.scheduled_for or 0.0)
            ),
            past_incidents=tuple(i for i in incidents if i.status in _CLOSED),
            all_incidents=tuple(incidents),
            all_maintenances=tuple(maintenances),
            updated_at=max(stamps, default=now),
        )

    def may_manage(self, actor: Principal) -> None:
        """Raise ``Denied`` unless ``actor`` may read and change incidents."""
        _admin_only(actor)

    async def list(self, actor: Principal, kind: str, *, limit: int) -> list[Incident]:
        _admin_only(actor)
        return await self._store.incidents(kind, limit=limit)

    async def get(self, actor: Principal, kind: str, incident_id: str) -> Incident:
        _admin_only(actor)
        return await self._find(kind, incident_id)

    async def _find(self, kind: str, incident_id: str) -> Incident:
        found = await self._store.incident(incident_id[:32])
        if found is None or found.kind != kind:
            raise NotFound(f"no {kind} {incident_id[:32]!r}")
        return found

    # -- managing --

    def _components(self, ids: Sequence[str]) -> tuple[str, ...]:
        known = {c.id for c in self.components}
        for component in ids:
            if component not in known:
                raise InvalidRequest(
                    f"no component {component[:64]!r}; "
                    f"known: {', '.join(sorted(known))}"
                )
        return tuple(dict.fromkeys(ids))

    async def create_incident(
        self,
        actor: Principal,
        *,
        name: str,
        body: str,
        status: str = "investigating",
        impact: str = "minor",
        components: Sequence[str] = (),
        client: str = "",
    ) -> Incident:
        _admin_only(actor)
        _choice(status, "status", INCIDENT_STATUSES)
        _choice(impact, "impact", IMPACTS)
        now = self._clock()
        incident_id = _new_id()
        incident = Incident(
            id=incident_id,
            kind=INCIDENT,
            name=_text(name, "name", MAX_NAME),
            status=status,
            impact=impact,
            components=self._components(components),
            created_at=now,
            updated_at=now,
            monitoring_at=now if status == "monitoring" else None,
            resolved_at=now if status == "resolved" else None,
            updates=(
                IncidentUpdate(
                    _new_id(), incident_id, status, _text(body, "body", MAX_BODY), now
                ),
            ),
        )
        await self._store.create_incident(incident)
        self._record(actor, "status.incident.create", incident, client)
        return incident

    async def schedule_maintenance(
        self,
        actor: Principal,
        *,
        name: str,
        body: str,
        scheduled_for: float,
        scheduled_until: float,
        components: Sequence[str] = (),
        client: str = "",
    ) -> Incident:
        _admin_only(actor)
        if scheduled_until <= scheduled_for:
            raise InvalidRequest("'scheduled_until' must be after 'scheduled_for'")
        now = self._clock()
        maintenance_id = _new_id()
        item = Incident(
            id=maintenance_id,
            kind=MAINTENANCE,
            name=_text(name, "name", MAX_NAME),
            status="scheduled",
            impact="maintenance",  # Statuspage's impact of every maintenance
            components=self._components(components),
            created_at=now,
            updated_at=now,
            scheduled_for=scheduled_for,
            scheduled_until=scheduled_until,
            updates=(
                IncidentUpdate(
                    _new_id(),
                    maintenance_id,
                    "scheduled",
                    _text(body, "body", MAX_BODY),
                    now,
                ),
            ),
        )
        await self._store.create_incident(item)
        self._record(actor, "status.maintenance.schedule", item, client)
        return item

    async def add_update(
        self,
        actor: Principal,
        kind: str,
        incident_id: str,
        *,
        status: str,
        body: str,
        impact: str | None = None,
        components: Sequence[str] | None = None,
        client: str = "",
    ) -> Incident:
        """Post an update; it moves the incident (or maintenance) to ``status``."""
        _admin_only(actor)
        current = await self._find(kind, incident_id)
        _choice(
            status,
            "status",
            INCIDENT_STATUSES if kind == INCIDENT else MAINTENANCE_STATUSES,
        )
        if current.status in _CLOSED:
            raise InvalidRequest(f"{kind} {current.id} is already {current.status}")
        if impact is not None and kind == INCIDENT:
            _choice(impact, "impact", IMPACTS)
        now = self._clock()
        update = IncidentUpdate(
            _new_id(), current.id, status, _text(body, "body", MAX_BODY), now
        )
        changed = replace(
            current,
            status=status,
            impact=impact
            if impact is not None and kind == INCIDENT
            else current.impact,
            components=(
                self._components(components)
                if components is not None
                else current.components
            ),
            updated_at=now,
            monitoring_at=(
                now
                if status == "monitoring" and current.monitoring_at is None
                else current.monitoring_at
            ),
            resolved_at=now if status in _CLOSED else None,
            updates=(*current.updates, update),
        )
        try:
            await self._store.update_incident(changed, update)
        except KeyError:
            raise NotFound(f"no {kind} {current.id!r}") from None
        self._record(actor, f"status.{kind}.update", changed, client)
        return changed

    def _record(
        self, actor: Principal, action: str, item: Incident, client: str
    ) -> None:
        if self._audit is not None:
            self._audit.record(
                actor.subject,
                action,
                f"{item.kind}:{item.id}",
                client=client,
                detail=f'{{"status": "{item.status}"}}',
            )


async def _timed(run: CheckFn) -> tuple[Outcome, float]:
    started = time.perf_counter()
    try:
        outcome = await asyncio.wait_for(run(), CHECK_TIMEOUT)
    except TimeoutError:
        outcome = Outcome(MAJOR, f"no answer within {CHECK_TIMEOUT:g} s")
    except Exception as exc:  # noqa: BLE001 - a failing check is the finding
        outcome = Outcome(MAJOR, f"{type(exc).__name__}: {exc}"[:255])
    return outcome, round((time.perf_counter() - started) * 1000, 1)
