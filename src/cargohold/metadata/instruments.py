"""What ``/metrics`` and ``/readyz`` read from the database.

Definitions only: ``sql_instruments`` implements them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class GcTotals:
    runs: int
    bytes_freed: int
    blobs_deleted: int
    last_finished_at: float | None


@dataclass(frozen=True, slots=True)
class StoreGauges:
    """One scrape's database-held numbers."""

    outbox: tuple[tuple[str, str, int], ...]  # (channel, state, messages)
    upload_sessions: int
    gc: GcTotals


class InstrumentStore(Protocol):
    async def ping(self) -> None:
        """Raise if the database cannot answer a query."""
        ...

    async def gauges(self) -> StoreGauges:
        """The numbers every process reports alike, read now."""
        ...

    async def record_gc(
        self, *, finished_at: float, blobs_deleted: int, bytes_freed: int
    ) -> None:
        """Record one finished (not dry-run) garbage collection."""
        ...
