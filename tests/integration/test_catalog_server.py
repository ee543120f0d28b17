"""The web catalog on a real ``cargohold serve --workers 2`` with token auth: a
session opened through one worker is seen by every worker, and signing out through one
ends it in all (sessions live in the database); anonymous visitors find the private
repository nowhere."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

import httpx
import pytest

from cargohold.api.app import open_services
from cargohold.auth.policy import Principal
from cargohold.settings import load
from tests.integration.helpers import push_image_to
from tests.integration.serverproc import ServerProcess, check_log

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROOT = Principal("user", "user:root", is_admin=True)
ADMIN = ("root", "root-password-123")
PAULA = ("paula", "paula-password-123")
PRIVATE = "acme/ledger"
# Fresh connections: granian hands them to either worker.
ROUNDS = 12


@pytest.fixture
def registry(workdir: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    process = ServerProcess(
        workdir / "data",
        workdir / "server.log",
        settings={
            "CARGOHOLD_ADMIN_USER": ADMIN[0],
            "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1],
            "CARGOHOLD_SERVER_WORKERS": "2",
        },
    )
    try:
        process.start()
        yield process
    finally:
        process.stop()
    check_log(process, request)


def _setup(data_dir: Path) -> None:
    async def run() -> None:
        services = open_services(load(None, {}, {"data_dir": data_dir}))
        try:
            admin = services.auth.admin
            await admin.create_organization(ROOT, "acme", client="test")
            await admin.create_user(ROOT, *PAULA, client="test")
            await admin.set_member(ROOT, "acme", PAULA[0], "puller", client="test")
        finally:
            await services.close()

    asyncio.run(run())


def _get(url: str, cookies: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=url, cookies=cookies, timeout=10) as client:
        return client.get("/")


def test_sessions_hold_across_workers(registry: ServerProcess) -> None:
    url = registry.url
    token = httpx.get(
        f"{url}/token",
        params={"service": "cargohold", "scope": f"repository:{PRIVATE}:pull,push"},
        auth=ADMIN,
        timeout=10,
    ).json()["token"]
    with httpx.Client(base_url=url, timeout=30) as http:
        push_image_to(
            http, PRIVATE, "latest", headers={"Authorization": f"Bearer {token}"}
        )
    _setup(registry.data_dir)

    missing = httpx.get(f"{url}/r/acme/nothing-here", timeout=10)
    hidden = httpx.get(f"{url}/r/{PRIVATE}", timeout=10)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text == missing.text
    for query in ("", "ledger", "acme"):
        page = httpx.get(f"{url}/", params={"q": query}, timeout=10)
        assert PRIVATE not in page.text
        assert f'href="/r/{PRIVATE}' not in page.text

    with httpx.Client(base_url=url, timeout=30) as browser:
        form = browser.get("/signin")
        token_field = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token_field is not None
        signed = browser.post(
            "/signin",
            data={
                "csrf": token_field.group(1),
                "username": PAULA[0],
                "password": PAULA[1],
            },
        )
        assert signed.status_code == 303
        session = {"cargohold_session": browser.cookies["cargohold_session"]}
        for _ in range(ROUNDS):
            assert PRIVATE in _get(url, session).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/").text)
        assert csrf is not None
        assert browser.post("/signout", data={"csrf": csrf.group(1)}).status_code == 303
    for _ in range(ROUNDS):
        assert PRIVATE not in _get(url, session).text
