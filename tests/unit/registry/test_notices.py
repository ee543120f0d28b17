"""Who may read which inbox (``cargohold.registry.notices``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cargohold.auth.policy import ANONYMOUS, OPEN, Principal
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.sql_outbox import SqlNoticeStore
from cargohold.oci.errors import Denied
from cargohold.registry.admin import NotFound
from cargohold.registry.notices import NoticeService
from tests.delivery import add_notice

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'notices.db'}")
    upgrade(database)
    try:
        yield database
    finally:
        await database.close()


@pytest.mark.parametrize("caller", [ANONYMOUS, OPEN])
async def test_an_inbox_needs_an_identity(db: Database, caller: Principal) -> None:
    service = NoticeService(SqlNoticeStore(db))
    with pytest.raises(Denied):
        await service.notices(caller, unread=False)
    with pytest.raises(Denied):
        await service.mark_all_read(caller)


async def test_each_reads_their_own(db: Database) -> None:
    service = NoticeService(SqlNoticeStore(db), clock=lambda: 5.0)
    token = Principal("token", "token:abc")
    admin = Principal("user", "user:root", is_admin=True)
    mine = add_notice(db, "token:abc", "adv-1", at=1.0)
    add_notice(db, "user:root", "adv-1", at=1.0)
    assert [n.id for n in await service.notices(token, unread=True)] == [mine]
    with pytest.raises(NotFound):
        await service.mark_read(admin, mine)  # an admin's inbox is their own too
    await service.mark_read(token, mine)
    assert await service.notices(token, unread=True) == []
    assert await service.mark_all_read(admin) == 1
