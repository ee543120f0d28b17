"""``TagHistoryService``: every move of a tag, for whoever may pull the repository.

The moves are written by the manifest index in the transaction that moves the tag
(``metadata/sql_advisories.record_tag_move_in``); this service only reads them, after
the same access decision as ``/token`` (a tag-limited caller sees only its tags).
"""

from __future__ import annotations

from cargohold.auth import policy
from cargohold.auth.policy import PULL, Principal
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
        decision = policy.decide(
            actor,
            await self._access.grants(actor),
            await self._access.repository_policy(repository.value),
            frozenset({PULL}),
        )
        if PULL not in decision.limits or not policy.tag_allowed(
            tag.value, decision.limits[PULL]
        ):
            raise NotFound(f"no tag {repository.value}:{tag.value} you may pull")
        # Empty for a tag never moved since history began (migration 0005).
        return await self._store.tag_history(
            repository.value, tag.value, limit=MAX_MOVES
        )
