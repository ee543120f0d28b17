"""``RepositoryService``: the catalog of repositories."""

from __future__ import annotations

from cargohold.auth.policy import Principal
from cargohold.metadata.store import MetadataStore
from cargohold.registry.access import AccessService
from cargohold.registry.paging import Page, visible_page


class RepositoryService:
    def __init__(self, meta: MetadataStore, access: AccessService) -> None:
        self._meta = meta
        self._access = access

    async def catalog(
        self, viewer: Principal, *, last: str | None, limit: int | None
    ) -> Page:
        """Repository names after ``last``: those ``viewer`` may pull from."""

        async def fetch(after: str | None, count: int | None) -> list[str]:
            return await self._meta.repositories.names(last=after, limit=count)

        async def keep(names: list[str]) -> list[str]:
            return await self._access.pullable(viewer, names)

        return await visible_page(
            fetch, None if viewer.is_admin else keep, last=last, limit=limit
        )
