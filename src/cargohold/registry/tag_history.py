"""``TagHistoryService``: every move of a tag, for whoever may pull the repository.

The moves are written by the manifest index in the transaction that moves the tag
(``metadata/sql_advisories.record_tag_move_in``); this service only reads them, after
the same access decision as ``/token`` (a tag-limited caller sees only its tags).
"""

from __future__ import annotations

from cargohold.auth.policy import Principal
from cargohold.metadata.advisories import AdvisoryStore, TagMove
from cargohold.oci.names import RepositoryName, Tag
from cargohold.registry.access import AccessService
from cargohold.registry.admin import NotFound

MAX_MOVES = 1000


class TagHistoryService:
    def __init__(self, store: AdvisoryStore, access: AccessService) -> None:
        self._store = store
        self._access = access

    async def history(
        self, actor: Principal, repository: RepositoryName, tag: Tag
    ) -> list[TagMove]:
        """The tag's moves, newest first (at most ``MAX_MOVES``).

        Raises:
            NotFound: the caller may not pull that tag (the same answer whether or not
                it exists).
        """
        access = await self._access.pull_access(actor, repository)
        if access is None or not access.allows_tag(tag.value):
            raise NotFound(f"no tag {repository.value}:{tag.value} you may pull")
        # Empty for a tag never moved since history began (migration 0005).
        return await self._store.tag_history(
            repository.value, tag.value, limit=MAX_MOVES
        )
