"""What the status page stores: check results, their daily counts, incidents.

Definitions only: ``sql_status`` implements ``StatusStore``; ``registry/status``
decides what the checks and incidents mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# A component's state, from best to worst (Statuspage's component statuses).
OPERATIONAL = "operational"
DEGRADED = "degraded_performance"
PARTIAL = "partial_outage"
MAJOR = "major_outage"
UNDER_MAINTENANCE = "under_maintenance"
CHECK_STATUSES = (OPERATIONAL, DEGRADED, PARTIAL, MAJOR)

INCIDENT, MAINTENANCE = "incident", "maintenance"
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
MAINTENANCE_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
IMPACTS = ("none", "minor", "major", "critical")
DAY = 86_400


@dataclass(frozen=True, slots=True)
class CheckResult:
    component: str
    checked_at: float
    status: str  # one of CHECK_STATUSES
    latency_ms: float
    detail: str
    checked_by: str = ""


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """One component's checks on one UTC day (``day``: days since the epoch)."""

    component: str
    day: int
    checks: int
    operational: int
    degraded: int
    partial: int
    major: int
    maintenance: int


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    id: str
    incident_id: str
    status: str
    body: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident or a scheduled maintenance (``kind``), with its updates, oldest
    first."""

    id: str
    kind: str
    name: str
    status: str
    impact: str
    components: tuple[str, ...]
    created_at: float
    updated_at: float
    monitoring_at: float | None = None
    resolved_at: float | None = None
    scheduled_for: float | None = None
    scheduled_until: float | None = None
    updates: tuple[IncidentUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueSignals:
    """What the signing queue and notification checks read from the outbox."""

    sign_pending: int
    oldest_sign_pending_at: float | None
    # Email and webhook messages retrying after a failed attempt, and given up on
    # (dead) since the ``since`` the caller passed.
    deliveries_failing: int
    deliveries_dead: int
    email_pending: int


class StatusStore(Protocol):
    async def record_checks(
        self, results: Sequence[CheckResult], *, maintenance: frozenset[str]
    ) -> None:
        """Store one round of results and count each in its component's UTC day
        (in ``maintenance`` when its component is in ``maintenance``), atomically."""
        ...

    async def latest_checks(self) -> dict[str, CheckResult]:
        """Each component's most recent result (within the kept raw checks)."""
        ...

    async def recent_checks(self, since: float) -> list[CheckResult]:
        """Results checked at or after ``since``, oldest first."""
        ...

    async def daily(self, since_day: int) -> list[DailyCounts]:
        """Daily counts of every component from ``since_day`` on."""
        ...

    async def prune(self, *, checks_before: float, days_before: int) -> int:
        """Delete raw checks older than ``checks_before`` and daily counts of days
        before ``days_before``; the number of rows deleted."""
        ...

    async def create_incident(self, incident: Incident) -> None:
        """Insert ``incident`` with its updates (its id is new)."""
        ...

    async def update_incident(self, incident: Incident, update: IncidentUpdate) -> None:
        """Replace the stored fields of ``incident.id`` and append ``update``.

        Raises:
            KeyError: no such incident.
        """
        ...

    async def incident(self, incident_id: str) -> Incident | None:
        """One incident or maintenance with its updates."""
        ...

    async def incidents(
        self, kind: str, *, limit: int, unresolved: bool = False
    ) -> list[Incident]:
        """Incidents (or maintenances) of ``kind``, newest first; ``unresolved``:
        only those not resolved (or completed)."""
        ...

    async def queue_signals(self, *, since: float) -> QueueSignals:
        """Outbox numbers for the signing queue and notification checks."""
        ...
