"""Pages of names a caller may see (tag lists, the catalog).

A page is filled with *visible* names: when some names are hidden from the caller, more
are read until the page is full, so the ``Link`` to the next page always names the last
name the caller saw, never a hidden one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Fetch = Callable[[str | None, int | None], Awaitable[list[str]]]
Keep = Callable[[list[str]], Awaitable[list[str]]]

# Names read at a time while filling a filtered page.
FILTERED_BATCH = 500


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    more: bool  # another page may follow ``items[-1]``


async def visible_page(
    fetch: Fetch, keep: Keep | None, *, last: str | None, limit: int | None
) -> Page:
    """Up to ``limit`` names after ``last`` (``None``: all) that ``keep`` accepts."""
    if limit == 0:
        return Page([], more=False)
    if limit is None:
        names = await fetch(last, None)
        return Page(await keep(names) if keep else names, more=False)
    batch_size = max(limit, FILTERED_BATCH) if keep else limit
    shown: list[str] = []
    cursor = last
    while True:
        batch = await fetch(cursor, batch_size)
        shown.extend(await keep(batch) if keep else batch)
        exhausted = len(batch) < batch_size
        if len(shown) >= limit:
            # Names after the page's last one remain if we kept more than a page, or
            # the store may hold more than this batch.
            return Page(shown[:limit], more=len(shown) > limit or not exhausted)
        if exhausted:
            return Page(shown, more=False)
        cursor = batch[-1]
