"""A wall clock the test moves by hand, for the services' injected ``clock``."""

from __future__ import annotations

import time


class ManualClock:
    """Starts at the real time (tokens issued by unclocked code stay comparable)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
