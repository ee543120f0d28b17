"""``WarningBoard``: the in-process map behind the manifest ``Warning`` header."""

from __future__ import annotations

import pytest

from cargohold.metadata.advisories import WarningRow
from cargohold.registry.advisories import WarningBoard

pytestmark = pytest.mark.anyio


class FakeStore:
    """The two ``AdvisoryStore`` reads the board makes, counted."""

    def __init__(self) -> None:
        self.rows: list[WarningRow] = []
        self.version = 0
        self.marker_reads = 0
        self.loads = 0

    async def marker(self) -> tuple[object, ...]:
        self.marker_reads += 1
        return (self.version,)

    async def warnings(self) -> list[WarningRow]:
        self.loads += 1
        return list(self.rows)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_refreshes_only_when_the_marker_moves_and_at_most_every_interval() -> (
    None
):
    store, clock = FakeStore(), Clock()
    board = WarningBoard(store, 2.0, clock=clock)  # type: ignore[arg-type]
    assert await board.lookup("acme/app", "sha256:x") == ()
    assert (store.marker_reads, store.loads) == (1, 1)
    store.rows = [WarningRow("acme/app", "sha256:x", "CH-1", "t", "v2")]
    store.version = 1
    # Within the window the map is served as is: no database read at all.
    clock.now += 1.9
    assert await board.lookup("acme/app", "sha256:x") == ()
    assert store.marker_reads == 1
    clock.now += 0.2
    assert await board.lookup("acme/app", "sha256:x") == (
        '299 - "CH-1: t; fixed in v2"',
    )
    assert (store.marker_reads, store.loads) == (2, 2)
    # The marker did not move: one cheap read, no reload.
    clock.now += 5
    assert await board.lookup("acme/app", "sha256:y") == ()
    assert (store.marker_reads, store.loads) == (3, 2)


async def test_several_advisories_on_one_digest_keep_their_order() -> None:
    store = FakeStore()
    store.rows = [
        WarningRow("r", "d", "CH-1", "one", None),
        WarningRow("r", "d", "CH-2", "two", "v3"),
    ]
    board = WarningBoard(store, 2.0, clock=Clock())  # type: ignore[arg-type]
    assert await board.lookup("r", "d") == (
        '299 - "CH-1: one"',
        '299 - "CH-2: two; fixed in v3"',
    )
