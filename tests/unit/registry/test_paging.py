"""Filling pages with visible names only (registry/paging.py)."""

from __future__ import annotations

import pytest

from cargohold.registry.paging import FILTERED_BATCH, Page, visible_page

pytestmark = pytest.mark.anyio

NAMES = [f"n{i:04d}" for i in range(1200)]


async def fetch(last: str | None, limit: int | None) -> list[str]:
    after = [n for n in NAMES if last is None or n > last]
    return after if limit is None else after[:limit]


async def odd_only(names: list[str]) -> list[str]:
    return [n for n in names if int(n[1:]) % 2]


async def none_visible(names: list[str]) -> list[str]:
    return []


async def test_unfiltered_pages() -> None:
    assert await visible_page(fetch, None, last=None, limit=0) == Page([], more=False)
    page = await visible_page(fetch, None, last=None, limit=2)
    assert page == Page(["n0000", "n0001"], more=True)
    tail = await visible_page(fetch, None, last="n1197", limit=5)
    assert tail == Page(["n1198", "n1199"], more=False)
    everything = await visible_page(fetch, None, last=None, limit=None)
    assert everything.items == NAMES
    assert not everything.more


async def test_filtered_pages_fill_up_across_batches() -> None:
    page = await visible_page(fetch, odd_only, last=None, limit=FILTERED_BATCH)
    assert len(page.items) == FILTERED_BATCH
    assert all(int(n[1:]) % 2 for n in page.items)
    assert page.more
    rest = await visible_page(
        fetch, odd_only, last=page.items[-1], limit=FILTERED_BATCH
    )
    assert len(rest.items) == 600 - FILTERED_BATCH
    assert not rest.more
    assert (await visible_page(fetch, odd_only, last=None, limit=None)).items == [
        n for n in NAMES if int(n[1:]) % 2
    ]


async def test_nothing_visible_means_no_next_page() -> None:
    assert await visible_page(fetch, none_visible, last=None, limit=3) == Page(
        [], more=False
    )
