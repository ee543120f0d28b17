"""Failed-login throttling per identity and per client address (sliding window).

State is per process: with several replicas each counts its own failures, which still
bounds guessing to (replicas * limit) attempts per window.
"""

from __future__ import annotations

import time
from collections import deque

# Keys tracked at most; beyond this the oldest go, bounding memory under a spray of
# names.
MAX_TRACKED_KEYS = 100_000


class LoginThrottle:
    def __init__(self, *, per_identity: int, per_client: int, window: float) -> None:
        self._limits = {"identity": per_identity, "client": per_client}
        self._window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        events = self._failures.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - self._window:
            events.popleft()
        if not events:
            del self._failures[key]
        return events

    def retry_after(
        self, identity: str, client: str, *, now: float | None = None
    ) -> int:
        """Seconds to wait before another attempt; 0 when one is allowed now."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for kind, value in (("identity", identity), ("client", client)):
            events = self._recent((kind, value), now)
            if len(events) >= self._limits[kind]:
                wait = max(wait, events[0] + self._window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, identity: str, client: str, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in (("identity", identity), ("client", client)):
            self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > MAX_TRACKED_KEYS:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, identity: str) -> None:
        self._failures.pop(("identity", identity), None)
