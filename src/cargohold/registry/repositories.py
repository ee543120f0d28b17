"""``RepositoryService``: the catalog of repositories."""

from __future__ import annotations

from cargohold.metadata.store import MetadataStore
from cargohold.registry.paging import Keep, Page, visible_page


class RepositoryService:
    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    async def catalog(
        self, *, last: str | None, limit: int | None, keep: Keep | None = None
    ) -> Page:
        """Repository names after ``last``; ``keep`` filters what the caller may see."""

        async def fetch(after: str | None, count: int | None) -> list[str]:
            return await self._meta.repositories.names(last=after, limit=count)

        return await visible_page(fetch, keep, last=last, limit=limit)
