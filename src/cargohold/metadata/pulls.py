"""``PullStore``: recorded manifest pulls and their daily aggregates (tables
``pull_events`` and ``pull_daily``).

The store decides nothing about who may read what (``registry/pulls.py`` does); it
writes batches, answers filtered pages and deletes what retention says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DAY = 86_400.0


def day_of(at: float) -> int:
    """The UTC day of ``at`` (days since 1970-01-01), the key of ``pull_daily``."""
    return int(at // DAY)


@dataclass(frozen=True, slots=True)
class PullEvent:
    """One pull as the request saw it; ``organization`` is found when it is written."""

    at: float
    identity: str  # "user:alice", "token:<id>", "oidc:<name>", "anonymous:<addr>"
    kind: str  # user | token | oidc | anonymous
    repository: str
    reference: str  # the tag or digest asked for
    digest: str  # what it resolved to
    method: str  # GET | HEAD
    client: str
    user_agent: str
    tool: str
    tool_version: str
    platform: str


@dataclass(frozen=True, slots=True)
class PullRecord:
    id: int
    event: PullEvent
    organization: str | None


@dataclass(frozen=True, slots=True)
class PullFilter:
    """What to list; ``None`` fields do not filter. ``namespaces``: only repositories
    under one of these organizations (``()`` matches nothing)."""

    repository: str | None = None
    digest: str | None = None
    reference: str | None = None
    identity: str | None = None
    since: float | None = None
    until: float | None = None  # exclusive
    namespaces: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Puller:
    identity: str
    count: int
    last_at: float


class PullStore(Protocol):
    async def record(self, events: list[PullEvent]) -> list[PullRecord]:
        """Write ``events`` and add them to ``pull_daily``, in one transaction.

        Each event's organization is the pull token's organization for a token, else
        the repository's first path component when an organization of that name
        exists, else ``None``. Returns the records written, in order.
        """
        ...

    async def query(
        self, where: PullFilter, *, limit: int, before: tuple[float, int] | None = None
    ) -> list[PullRecord]:
        """At most ``limit`` matching pulls, newest first (by time, then id), those
        strictly older than ``before`` (a previous page's last ``(at, id)``)."""
        ...

    async def pullers(self, digest: str, *, since: float) -> list[Puller]:
        """Who pulled ``digest`` at or after ``since``: one row per identity, the
        most recent first."""
        ...

    async def prune(
        self, *, events_before: float, daily_before: int, batch: int
    ) -> tuple[int, int]:
        """Delete at most ``batch`` events older than ``events_before`` and at most
        ``batch`` aggregates of days before ``daily_before``; the counts deleted."""
        ...
