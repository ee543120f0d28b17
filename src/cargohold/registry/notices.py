"""The inbox: advisory notices of the identity that asks, and only of that identity.

The advisories' fan-out inserts the rows (one per identity, advisory and revision); this
service reads them and marks them read. Every caller reads their own inbox with their
own credentials (a user, a pull token, a CI identity); no one reads another's, and a
notice of someone else is answered as if it did not exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cargohold.oci.errors import Denied
from cargohold.registry.admin import NotFound

if TYPE_CHECKING:
    from cargohold.auth.policy import Principal
    from cargohold.metadata.delivery import NoticeRecord, NoticeStore

MAX_NOTICES = 1000


def _inbox_of(actor: Principal) -> str:
    if actor.anonymous or actor.kind == "open":
        raise Denied("an inbox belongs to an identity: log in to read yours")
    return actor.subject


class NoticeService:
    def __init__(
        self, store: NoticeStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._clock = clock

    async def notices(
        self, actor: Principal, *, unread: bool, limit: int = MAX_NOTICES
    ) -> list[NoticeRecord]:
        """The caller's notices, newest first."""
        return await self._store.for_identity(
            _inbox_of(actor), unread=unread, limit=min(limit, MAX_NOTICES)
        )

    async def mark_read(self, actor: Principal, notice_id: int) -> None:
        """Raises ``NotFound`` unless ``notice_id`` is one of the caller's notices."""
        if not await self._store.mark_read(
            _inbox_of(actor), notice_id, now=self._clock()
        ):
            raise NotFound(f"no notice {notice_id}")

    async def mark_all_read(self, actor: Principal) -> int:
        return await self._store.mark_all_read(_inbox_of(actor), now=self._clock())
