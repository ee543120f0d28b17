"""Webhooks end to end: the management API (who may, what is refused), events from
pushes and deletes, and signed deliveries to a loopback receiver.

Against a real server (two workers) the deliveries are made by the server's own outbox
workers; the test polls the receiver and the outbox table (bounded).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
import sqlalchemy as sa
import structlog
from click.testing import CliRunner, Result
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks import Webhook

from cargohold.cli import main
from cargohold.metadata import schema as t
from tests.apptypes import MakeClient
from tests.integration.authhelpers import (
    ADMIN,
    as_user,
    bearer,
    token,
    token_auth_client,
)
from tests.integration.helpers import assert_error, push_image
from tests.integration.serverproc import ServerProcess
from tests.webhook_receiver import Receiver, serve

pytestmark = pytest.mark.anyio

API = "/api/v1"
PASSWORD = "correct-horse-battery"  # noqa: S105 - a test account
WAIT = 30.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


async def _login(client: httpx.AsyncClient, name: str, password: str) -> dict[str, str]:
    return bearer(await token(client, auth=(name, password)))


async def _setup(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """Organizations acme (owner alice) and beta (owner bob); the callers' headers."""
    root = await _login(client, *ADMIN)
    for org in ("acme", "beta"):
        response = await client.post(f"{API}/orgs", json={"name": org}, headers=root)
        assert response.status_code == 201
    for user, org in (("alice", "acme"), ("bob", "beta")):
        created = await client.post(
            f"{API}/users", json={"name": user, "password": PASSWORD}, headers=root
        )
        assert created.status_code == 201
        member = await client.put(
            f"{API}/orgs/{org}/members/{user}", json={"role": "owner"}, headers=root
        )
        assert member.status_code == 200
    return {
        "root": root,
        "alice": await _login(client, "alice", PASSWORD),
        "bob": await _login(client, "bob", PASSWORD),
    }


async def test_private_targets_and_bad_fields_are_refused(
    make_client: MakeClient,
) -> None:
    client = await token_auth_client(make_client)  # the default: no private targets
    who = await _setup(client)
    url = f"{API}/orgs/acme/webhooks"
    for body in (
        {"url": "http://127.0.0.1:8080/hook"},
        {"url": "http://localhost/hook"},
        {"url": "https://10.1.2.3/hook"},
        {"url": "http://169.254.169.254/latest/meta-data"},
        {"url": "http://[::1]/hook"},
        {"url": "ftp://hooks.example.com/x"},
        {"url": "https://user:pw@hooks.example.com/x"},
        {"url": "https://hooks.example.com/x", "events": ["pushed"]},
        {"url": "https://hooks.example.com/x", "events": []},
        {"url": "https://hooks.example.com/x", "repositories": ["beta/*"]},
        {"url": "https://hooks.example.com/x", "events": "push"},
        {"url": 5},
    ):
        response = await client.post(url, json=body, headers=who["alice"])
        assert_error(response, 400, "INVALID_REQUEST")
    assert (await client.get(url, headers=who["alice"])).json() == []


async def test_owners_manage_their_own_organizations_webhooks_only(
    make_client: MakeClient, receiver: Receiver
) -> None:
    client = await token_auth_client(
        make_client, webhooks={"allow_private_networks": True}
    )
    who = await _setup(client)
    acme = f"{API}/orgs/acme/webhooks"
    created = await client.post(
        acme,
        json={"url": receiver.url, "events": ["push"], "repositories": ["acme/app*"]},
        headers=who["alice"],
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    secret = hook.pop("secret")
    assert secret.startswith("whsec_")
    one = f"{acme}/{hook['id']}"
    shown = await client.get(one, headers=who["alice"])
    assert shown.json() == hook
    assert "secret" not in (await client.get(acme, headers=who["alice"])).json()[0]
    assert secret not in shown.text
    # bob owns beta, not acme: he can neither see nor add nor remove acme's webhooks.
    for method, path in (("GET", acme), ("POST", acme), ("GET", one),
                         ("DELETE", one), ("POST", f"{one}/rotate"),
                         ("GET", f"{one}/deliveries")):  # fmt: skip
        response = await client.request(
            method, path, json={"url": receiver.url}, headers=who["bob"]
        )
        assert_error(response, 403, "DENIED")
    # Through his own organization's path, acme's webhook does not exist.
    stray = await client.get(
        f"{API}/orgs/beta/webhooks/{hook['id']}", headers=who["bob"]
    )
    assert_error(stray, 404, "NOT_FOUND")
    # Registry-wide webhooks are the administrators'.
    assert_error(
        await client.get(f"{API}/webhooks", headers=who["alice"]), 403, "DENIED"
    )
    assert_error(await client.get(acme), 401, "UNAUTHORIZED")
    wide = await client.post(
        f"{API}/webhooks", json={"url": receiver.url}, headers=who["root"]
    )
    assert wide.status_code == 201
    assert wide.json()["organization"] is None

    # A ping, signed with the secret shown at creation; its attempt is in the log.
    tested = await client.post(f"{one}/test", headers=who["alice"])
    assert tested.json()["ok"] is True
    assert tested.json()["status_code"] == 204
    (ping,) = receiver.requests
    Webhook(secret).verify(ping.body, ping.headers)
    assert from_http_event(HTTPMessage(ping.headers, ping.body)).get_type() == (
        "dev.cargohold.ping"
    )
    log = (await client.get(f"{one}/deliveries", headers=who["alice"])).json()
    assert [(d["event"], d["status_code"]) for d in log] == [("ping", 204)]

    rotated = await client.post(f"{one}/rotate", headers=who["alice"])
    new_secret = rotated.json()["secret"]
    assert new_secret != secret
    assert rotated.json()["previous_secret_until"]
    await client.post(f"{one}/test", headers=who["alice"])
    second = receiver.requests[1]
    Webhook(new_secret).verify(second.body, second.headers)
    Webhook(secret).verify(second.body, second.headers)  # within the overlap

    disabled = await client.post(f"{one}/disable", headers=who["alice"])
    assert disabled.json()["disabled"] is True
    enabled = await client.post(f"{one}/enable", headers=who["alice"])
    assert enabled.json()["disabled"] is False
    assert (await client.delete(one, headers=who["alice"])).status_code == 204
    assert_error(await client.get(one, headers=who["alice"]), 404, "NOT_FOUND")


# -- a real server with two workers ----------------------------------------------------


class AuthServer(ServerProcess):
    def _answers(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/v2/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code in {200, 401}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[AuthServer]:
    server = AuthServer(
        tmp_path / "data",
        tmp_path / "server.log",
        settings={
            "CARGOHOLD_AUTH_MODE": "token",
            "CARGOHOLD_ADMIN_USER": ADMIN[0],
            "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1],
            "CARGOHOLD_SERVER_WORKERS": "2",
            "CARGOHOLD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
            "CARGOHOLD_OUTBOX_POLL_INTERVAL_SECONDS": "0.1",
            "CARGOHOLD_OUTBOX_BASE_DELAY_SECONDS": "0.5",
        },
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _events(requests: list[Any]) -> list[tuple[str, str]]:
    found = []
    for request in requests:
        cloud = from_http_event(HTTPMessage(request.headers, request.body))
        found.append((cloud.get_type(), cloud.get_id()))
    return found


def _outbox_pending(registry: AuthServer) -> int:
    """Webhook messages not yet settled, straight from the server's database."""
    o = t.outbox
    query = (
        sa.select(sa.func.count())
        .select_from(o)
        .where(o.c.channel == "webhook", o.c.state == "pending")
    )
    engine = sa.create_engine(f"sqlite:///{registry.data_dir / 'cargohold.db'}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


async def _until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` (bounded); the server's outbox delivers on its own."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if await check():
            return
        await anyio.sleep(0.05)
    pytest.fail(f"timed out after {WAIT:.0f}s waiting for {what}")


async def test_pushes_reach_an_organizations_webhook_signed_and_once(
    registry: AuthServer, receiver: Receiver
) -> None:
    """The server's own outbox workers deliver: a failed attempt is retried with the
    same ``webhook-id``, every event arrives once, signed."""
    async with (
        httpx.AsyncClient(base_url=registry.url + API, auth=ADMIN) as admin,
        httpx.AsyncClient(base_url=registry.url, timeout=30.0) as client,
    ):
        assert (await admin.post("/orgs", json={"name": "acme"})).status_code == 201
        created = await admin.post(
            "/orgs/acme/webhooks",
            json={"url": receiver.url, "events": ["push", "tag.moved", "delete"]},
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        client.headers.update(
            await as_user(client, "acme/app", "push,pull,delete", ADMIN)
        )
        receiver.answers = [500]  # the first delivery fails and is retried
        digest, _ = await push_image(client, "acme/app", "v1")
        # The same manifest again under the same tag: a push; the tag did not move.
        await push_image(client, "acme/app", "v1")

        # Three events; one attempt refused, then retried.
        await anyio.to_thread.run_sync(lambda: receiver.wait_for(4, timeout=WAIT))
        await _until(
            "the webhook messages settled",
            lambda: anyio.to_thread.run_sync(lambda: _outbox_pending(registry) == 0),
        )
        assert len(receiver.requests) == 4
        for request in receiver.requests:
            Webhook(hook["secret"]).verify(request.body, request.headers)
        delivered = _events([r for r in receiver.requests if r.status == 204])
        assert sorted(k for k, _ in delivered) == [
            "dev.cargohold.push", "dev.cargohold.push", "dev.cargohold.tag.moved",
        ]  # fmt: skip
        assert len({event_id for _, event_id in delivered}) == 3  # each once
        # The retry is the same message: same webhook-id, same body.
        failed = receiver.requests[0]
        assert failed.status == 500
        retries = [
            r
            for r in receiver.requests
            if r.headers["webhook-id"] == failed.headers["webhook-id"]
        ]
        assert [r.status for r in retries] == [500, 204]
        assert len({r.body for r in retries}) == 1
        moved = next(r for r in receiver.requests if b"tag.moved" in r.body)
        data = from_http_event(HTTPMessage(moved.headers, moved.body)).get_data()
        assert isinstance(data, dict)
        assert (data["repository"], data["tag"]) == ("acme/app", "v1")
        assert (data["digest"], data["previous"]) == (digest, None)
        assert data["actor"] == "user:root"

        log = await admin.get(f"/orgs/acme/webhooks/{hook['id']}/deliveries")
        assert sorted(d["status_code"] for d in log.json()) == [204, 204, 204, 500]

        deleted = await client.delete("/v2/acme/app/manifests/v1")
        assert deleted.status_code == 202
        await anyio.to_thread.run_sync(lambda: receiver.wait_for(5, timeout=WAIT))
        await _until(
            "the delete delivered",
            lambda: anyio.to_thread.run_sync(lambda: _outbox_pending(registry) == 0),
        )
        assert len(receiver.requests) == 5
        assert _events(receiver.requests[-1:])[0][0] == "dev.cargohold.delete"


# -- the CLI ---------------------------------------------------------------------------


def test_cli_manages_webhooks_on_the_data_directory(
    tmp_path: Path, receiver: Receiver
) -> None:
    structlog_reset = structlog.reset_defaults
    env = {"CARGOHOLD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true"}
    (tmp_path / "data").mkdir()
    data = ["--data-dir", str(tmp_path / "data")]

    def cli(*args: str) -> Result:
        return CliRunner().invoke(main, [*args, *data], env=env)

    try:
        assert cli("orgs", "add", "acme").exit_code == 0
        added = cli("webhooks", "add", receiver.url, "--org", "acme", "--event",
                    "push", "--json")  # fmt: skip
        assert added.exit_code == 0, added.output
        hook = json.loads(added.stdout)
        assert hook["secret"].startswith("whsec_")
        listed = cli("webhooks", "list", "--org", "acme")
        assert hook["id"] in listed.stdout
        assert hook["secret"] not in listed.stdout
        tested = cli("webhooks", "test", hook["id"], "--org", "acme")
        assert tested.exit_code == 0, tested.output
        Webhook(hook["secret"]).verify(receiver.requests[0].body,
                                       receiver.requests[0].headers)  # fmt: skip
        log = cli("webhooks", "deliveries", hook["id"], "--org", "acme", "--json")
        assert [d["status_code"] for d in json.loads(log.stdout)] == [204]
        rotated = cli("webhooks", "rotate", hook["id"], "--org", "acme")
        assert "secret: whsec_" in rotated.stdout
        receiver.default = 500
        assert cli("webhooks", "test", hook["id"], "--org", "acme").exit_code == 1
        # Registry-wide webhooks are another list; acme's is not in it.
        assert hook["id"] not in cli("webhooks", "list").stdout
        assert cli("webhooks", "show", hook["id"]).exit_code == 1
        assert cli("webhooks", "rm", hook["id"], "--org", "acme").exit_code == 0
        assert cli("webhooks", "list", "--org", "acme").stdout.strip() == "(none)"
    finally:
        structlog_reset()
