"""Pull events end to end: a real ``cargohold serve`` with two workers records pulls by
a user, a pull token and an anonymous caller; the API and ``cargohold pulls`` read them
back to those allowed; HEAD is not recorded unless configured."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import structlog
from click.testing import CliRunner

from cargohold.cli import main
from cargohold.metadata.database import Database
from cargohold.metadata.pulls import DAY, PullEvent
from cargohold.metadata.sql_pulls import SqlPullStore
from tests.contract.conftest import POSTGRES_URL, POSTGRES_URL_VARIABLE, reset
from tests.integration.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    image_manifest,
    push_image_to,
)
from tests.integration.serverproc import ServerProcess, check_log, run_cli
from tests.prerequisites import skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROOT = ("root", "root-password-123")
PASSWORD = "a-long-password-1"  # noqa: S105 - test accounts
REPO = "acme/app"
API = "/api/v1"
POLL_SECONDS = 20.0


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """The server's database: its own SQLite file, or the emptied test PostgreSQL."""
    if request.param == "sqlite":
        return {}
    if not POSTGRES_URL:
        skip_or_fail(f"{POSTGRES_URL_VARIABLE} is not set")
    db = Database(POSTGRES_URL)
    reset(db)
    db.writer.dispose()
    return {"CARGOHOLD_DATABASE_URL": POSTGRES_URL}


@pytest.fixture
def server(
    workdir: Path, database: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    settings = database | {
        "CARGOHOLD_AUTH_MODE": "token",
        "CARGOHOLD_ADMIN_USER": ROOT[0],
        "CARGOHOLD_ADMIN_PASSWORD": ROOT[1],
        "CARGOHOLD_SERVER_WORKERS": "2",
        "CARGOHOLD_PULLS_FLUSH_INTERVAL_SECONDS": "0.2",
    }
    process = ServerProcess(workdir / "data", workdir / "server.log", settings=settings)
    process.start()
    try:
        yield process
    finally:
        process.stop()
    check_log(process, request)


def token(http: httpx.Client, scope: str, auth: tuple[str, str] | None) -> str:
    response = http.get(
        "/token", params={"service": "cargohold", "scope": scope}, auth=auth
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def admin_call(http: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    response = http.request(method, API + path, json=body, auth=ROOT)
    assert response.is_success, (method, path, response.text)
    return response.json() if response.content else None


def push(http: httpx.Client) -> str:
    bearer = token(http, f"repository:{REPO}:pull,push", ROOT)
    return push_image_to(
        http, REPO, "latest", headers={"Authorization": f"Bearer {bearer}"}
    )


def pull(
    http: httpx.Client,
    reference: str,
    *,
    auth: tuple[str, str] | None,
    agent: str,
    method: str = "GET",
) -> None:
    bearer = token(http, f"repository:{REPO}:pull", auth)
    response = http.request(
        method,
        f"/v2/{REPO}/manifests/{reference}",
        headers={
            "Authorization": f"Bearer {bearer}",
            "Accept": OCI_MANIFEST,
            "User-Agent": agent,
            # Not from a trusted proxy (none configured): must be ignored.
            "X-Forwarded-For": "203.0.113.66",
        },
    )
    assert response.status_code == 200, response.text


def wait_for_pulls(http: httpx.Client, count: int) -> list[dict[str, Any]]:
    """The recorded pulls once there are ``count`` (workers flush every 0.2 s)."""
    deadline = time.monotonic() + POLL_SECONDS
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = admin_call(http, "GET", "/pulls")["pulls"]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    pytest.fail(f"{len(found)} pulls recorded, expected {count}: {found}")


def provision(http: httpx.Client) -> dict[str, Any]:
    """acme with alice (puller), bob (owner), carol (no role), a pull token; a public
    acme/app:latest. Returns the created pull token."""
    admin_call(http, "POST", "/orgs", {"name": "acme"})
    for name, role in (("alice", "puller"), ("bob", "owner"), ("carol", None)):
        admin_call(http, "POST", "/users", {"name": name, "password": PASSWORD})
        if role:
            admin_call(http, "PUT", f"/orgs/acme/members/{name}", {"role": role})
    admin_call(http, "PUT", f"/repositories/{REPO}/settings", {"visibility": "public"})
    created: dict[str, Any] = admin_call(
        http, "POST", "/orgs/acme/tokens", {"description": "ci", "role": "puller"}
    )
    return created


def check_recorded(
    pulls: list[dict[str, Any]], digest: str, token_identity: str
) -> None:
    by_identity = {p["identity"]: p for p in pulls}
    assert set(by_identity) == {
        "user:alice",
        token_identity,
        "anonymous:127.0.0.1",
    }, pulls
    alice = by_identity["user:alice"]
    assert alice["reference"] == "latest"
    assert alice["digest"] == digest
    assert alice["method"] == "GET"  # the HEAD was not recorded
    assert (alice["tool"], alice["tool_version"]) == ("skopeo", "1.9.3")
    assert alice["client"] == "127.0.0.1"  # X-Forwarded-For from no trusted proxy
    token_pull = by_identity[token_identity]
    assert token_pull["reference"] == digest
    assert token_pull["tool"] == "containerd"
    anonymous = by_identity["anonymous:127.0.0.1"]
    assert (anonymous["tool"], anonymous["platform"]) == ("cri-o", "linux/amd64")


def check_reading(http: httpx.Client, digest: str, token: dict[str, Any]) -> None:
    """Filters, pages, and who may read what."""
    only = admin_call(http, "GET", f"/pulls?digest={digest}&identity=user:alice")
    assert [p["identity"] for p in only["pulls"]] == ["user:alice"]
    first = http.get(f"{API}/pulls", params={"limit": 1}, auth=ROOT)
    assert len(first.json()["pulls"]) == 1
    assert 'rel="next"' in first.headers["Link"]
    second = http.get(
        f"{API}/pulls", params={"limit": 1, "next": first.json()["next"]}, auth=ROOT
    )
    assert second.json()["pulls"] != first.json()["pulls"]

    def status(path: str, auth: tuple[str, str] | None, **params: str) -> int:
        return http.get(f"{API}{path}", params=params, auth=auth).status_code

    owner = http.get(f"{API}/pulls", auth=("bob", PASSWORD))
    assert len(owner.json()["pulls"]) == 3
    assert status("/pulls", ("carol", PASSWORD)) == 403
    assert status("/pulls", ("alice", PASSWORD)) == 403
    assert status("/pulls", ("carol", PASSWORD), repository=REPO) == 403
    assert status("/pulls", None) == 401
    assert status("/me/pulls", None) == 401
    assert status("/pulls", ROOT, since="yesterday") == 400
    assert status("/pulls", ROOT, next="!!") == 400

    def mine(auth: tuple[str, str]) -> list[str]:
        answer = http.get(f"{API}/me/pulls", auth=auth).json()
        return [p["identity"] for p in answer["pulls"]]

    assert mine(("alice", PASSWORD)) == ["user:alice"]
    assert mine(("ci", token["secret"])) == [f"token:{token['id']}"]
    assert mine(("carol", PASSWORD)) == []


def test_pulls_are_recorded_and_read_back_by_those_allowed(
    server: ServerProcess,
) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        token = provision(http)
        digest = push(http)
        alice = ("alice", PASSWORD)
        pull(http, "latest", auth=alice, agent="skopeo/1.9.3")
        pull(http, "latest", auth=alice, agent="skopeo/1.9.3", method="HEAD")
        pull(http, digest, auth=("ci", token["secret"]), agent="containerd/v1.7.11")
        pull(http, "latest", auth=None, agent="cri-o/1.28.2 os/linux arch/amd64")
        pulls = wait_for_pulls(http, 3)
        check_recorded(pulls, digest, f"token:{token['id']}")
        check_reading(http, digest, token)

    # the CLI, remotely, as CSV and JSON
    result = CliRunner().invoke(
        main,
        ["pulls", "--registry", server.url, "--username", "root", "--csv"],
        env={"CARGOHOLD_PASSWORD": ROOT[1]},
    )
    assert result.exit_code == 0, (result.output, result.exception)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["identity"] for row in rows} == {p["identity"] for p in pulls}
    assert {row["digest"] for row in rows} == {digest}
    result = CliRunner().invoke(
        main,
        ["pulls", "--me", "--json", "--registry", server.url, "--username", "alice"],
        env={"CARGOHOLD_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert [p["identity"] for p in json.loads(result.stdout)["pulls"]] == ["user:alice"]


def push_index(http: httpx.Client) -> str:
    """acme/app:v1 (an image), acme/app:multi (an index of it); the image digest."""
    config, layer = b'{"os":"linux"}', b"layer" * 10
    for blob in (config, layer):
        http.post(
            f"/v2/{REPO}/blobs/uploads/",
            params={"digest": digest_of(blob)},
            content=blob,
        ).raise_for_status()
    manifest = image_manifest(config, [layer])
    http.put(
        f"/v2/{REPO}/manifests/v1",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    ).raise_for_status()
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(manifest, OCI_MANIFEST)],
    }
    http.put(
        f"/v2/{REPO}/manifests/multi",
        content=json.dumps(index).encode(),
        headers={"Content-Type": OCI_INDEX},
    ).raise_for_status()
    return digest_of(manifest)


def test_a_graceful_stop_writes_queued_pulls_and_prune_keeps_recent_ones(
    workdir: Path, database: dict[str, str], request: pytest.FixtureRequest
) -> None:
    # Flushes only at the stop: the pulls are in the queue until SIGTERM. The server
    # trusts its loopback peer as a proxy, so X-Forwarded-For names the client.
    settings = database | {
        "CARGOHOLD_AUTH_MODE": "none",
        "CARGOHOLD_PULLS_FLUSH_INTERVAL_SECONDS": "3600",
        "CARGOHOLD_SERVER_TRUSTED_PROXIES": "127.0.0.0/8",
    }
    data_dir = workdir / "data"
    server = ServerProcess(data_dir, workdir / "server.log", settings=settings)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as http:
            child = push_index(http)
            forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
            # an index, then the child the client picked: two pulls
            http.get(f"/v2/{REPO}/manifests/multi").raise_for_status()
            http.get(
                f"/v2/{REPO}/manifests/{child}", headers=forwarded
            ).raise_for_status()
        code, _ = server.terminate()
        assert code == 0
    finally:
        server.stop()
    check_log(server, request)

    url = database.get(
        "CARGOHOLD_DATABASE_URL", f"sqlite:///{data_dir / 'cargohold.db'}"
    )
    old = PullEvent(
        at=time.time() - 400 * DAY, identity="user:old", kind="user",
        repository=REPO, reference="v0", digest="sha256:" + "0" * 64, method="GET",
        client="192.0.2.1", user_agent="", tool="other", tool_version="", platform="",
    )  # fmt: skip
    asyncio.run(_record(url, old))

    pruned = run_cli("pulls", "prune", data_dir=data_dir, CARGOHOLD_DATABASE_URL=url)
    assert pruned.returncode == 0, pruned.stderr
    assert "deleted 1 pull events and 0 daily aggregates" in pruned.stdout
    listed = run_cli("pulls", "--json", data_dir=data_dir, CARGOHOLD_DATABASE_URL=url)
    assert listed.returncode == 0, listed.stderr
    pulls = json.loads(listed.stdout)["pulls"]
    assert [(p["identity"], p["reference"], p["client"]) for p in pulls] == [
        ("anonymous:203.0.113.9", child, "203.0.113.9"),
        ("anonymous:127.0.0.1", "multi", "127.0.0.1"),
    ]


async def _record(url: str, event: PullEvent) -> None:
    db = Database(url)
    try:
        await SqlPullStore(db).record([event])
    finally:
        await db.close()
