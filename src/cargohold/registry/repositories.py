"""``RepositoryService``: the catalog of repositories."""

from __future__ import annotations

from cargohold.metadata.store import MetadataStore


class RepositoryService:
    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta

    async def catalog(self, *, last: str | None, limit: int | None) -> list[str]:
        if limit == 0:
            return []
        return await self._meta.repositories.names(last=last, limit=limit)
