"""``/api/v1/notices`` and ``/api/v1/outbox`` through the whole app (token auth on).

Notices are inserted as the advisories' fan-out does; each identity reads its own with
its own credentials (a user's password, a pull token's secret).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest
import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from tests.delivery import add_notice, enqueue_emails
from tests.integration.authhelpers import ADMIN
from tests.integration.helpers import assert_error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cargohold.settings import Settings

pytestmark = pytest.mark.anyio

API = "/api/v1"
PASSWORD = "alice-password-1"  # noqa: S105 - a test account


@pytest.fixture
def database(
    settings_factory: Callable[..., Settings], auth_client: httpx.AsyncClient
) -> Iterator[Database]:
    """The app's database (its data directory), for rows the fan-out would write."""
    assert auth_client is not None  # the app has migrated it
    db = Database(settings_factory().database_url)
    yield db
    db.reader.dispose()
    db.writer.dispose()


async def test_each_identity_reads_and_marks_its_own(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    client = auth_client
    root = httpx.BasicAuth(*ADMIN)
    assert (
        await client.post(f"{API}/orgs", json={"name": "acme"}, auth=root)
    ).status_code == 201
    created = await client.post(
        f"{API}/users", json={"name": "alice", "password": PASSWORD}, auth=root
    )
    assert created.status_code == 201
    token = (
        await client.post(
            f"{API}/orgs/acme/tokens", json={"description": "ci"}, auth=root
        )
    ).json()
    pull_token = httpx.BasicAuth("anything", token["secret"])
    alice = httpx.BasicAuth("alice", PASSWORD)
    now = time.time()
    mine = add_notice(database, "user:alice", "ADV-1", at=now)
    tokens = add_notice(database, f"token:{token['id']}", "ADV-1", at=now)

    answer = await client.get(f"{API}/notices", auth=alice)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    [notice] = answer.json()["notices"]
    assert notice["id"] == mine
    assert set(notice) >= {
        "id", "advisory", "title", "severity", "state", "digests", "fixed_in", "read",
        "created_at",
    }  # fmt: skip
    [theirs] = (await client.get(f"{API}/notices", auth=pull_token)).json()["notices"]
    assert theirs["id"] == tokens
    # The token knows who it is: the identity its notices and pulls are under.
    me = (await client.get(f"{API}/me", auth=pull_token)).json()
    assert me == {
        "identity": f"token:{token['id']}",
        "kind": "token",
        "admin": False,
        "email": None,
        "organizations": ["acme"],
    }

    # Another identity's notice does not exist for you.
    refused = await client.post(f"{API}/notices/{tokens}/read", auth=alice)
    assert_error(refused, 404, "NOT_FOUND")
    read = await client.post(f"{API}/notices/{tokens}/read", auth=pull_token)
    assert read.json() == {"read": 1}
    unread = await client.get(
        f"{API}/notices", params={"unread": "true"}, auth=pull_token
    )
    assert unread.json() == {"notices": []}
    everything = await client.post(f"{API}/notices/read", auth=alice)
    assert everything.json() == {"read": 1}
    [read_one] = (await client.get(f"{API}/notices", auth=alice)).json()["notices"]
    assert read_one["read"] is True

    bad = await client.get(f"{API}/notices", params={"unread": "maybe"}, auth=alice)
    assert_error(bad, 400, "INVALID_REQUEST")
    anonymous = await client.get(f"{API}/notices")
    assert anonymous.status_code == 401


async def test_the_outbox_is_for_administrators(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    client = auth_client
    root = httpx.BasicAuth(*ADMIN)
    enqueue_emails(database, ["bob@example.com"], now=time.time())
    created = await client.post(
        f"{API}/users", json={"name": "alice", "password": PASSWORD}, auth=root
    )
    assert created.status_code == 201
    alice = httpx.BasicAuth("alice", PASSWORD)
    assert_error(await client.get(f"{API}/outbox", auth=alice), 403, "DENIED")
    assert_error(await client.post(f"{API}/outbox/1/retry", auth=alice), 403, "DENIED")
    listed = await client.get(f"{API}/outbox", params={"state": "pending"}, auth=root)
    [message] = listed.json()["messages"]
    assert message["key"] == "email:ADV-1:1:bob@example.com"
    assert (message["state"], message["attempts"], message["last_error"]) == (
        "pending",
        0,
        None,
    )
    dead = await client.get(f"{API}/outbox", params={"state": "dead"}, auth=root)
    assert dead.json() == {"messages": []}
    after = await client.get(
        f"{API}/outbox", params={"after": message["id"]}, auth=root
    )
    assert after.json() == {"messages": []}
    bad = await client.get(f"{API}/outbox", params={"state": "lost"}, auth=root)
    assert_error(bad, 400, "INVALID_REQUEST")
    not_dead = await client.post(f"{API}/outbox/{message['id']}/retry", auth=root)
    assert_error(not_dead, 404, "NOT_FOUND")


async def test_a_retry_is_audited(
    auth_client: httpx.AsyncClient, database: Database
) -> None:
    enqueue_emails(database, ["gone@example.com"], now=time.time())
    dead = sa.update(t.outbox).values(state="dead", attempts=12, last_error="550")
    database.run_sync(lambda conn: conn.execute(dead))
    root = httpx.BasicAuth(*ADMIN)
    [message] = (
        await auth_client.get(f"{API}/outbox", params={"state": "dead"}, auth=root)
    ).json()["messages"]
    retried = await auth_client.post(f"{API}/outbox/{message['id']}/retry", auth=root)
    assert retried.json() == {"retried": message["id"]}
    [pending] = (
        await auth_client.get(f"{API}/outbox", params={"state": "pending"}, auth=root)
    ).json()["messages"]
    assert (pending["attempts"], pending["last_error"]) == (0, "550")
    events = (await auth_client.get(f"{API}/audit", auth=root)).json()
    [event] = [e for e in events if e["action"] == "outbox.retry"]
    assert (event["actor"], event["target"]) == ("user:root", f"outbox:{message['id']}")
