"""The status page in-process: checks stored and shown, incidents managed through the
management API and read anonymously from the page, the Statuspage JSON and the Atom
feed (read by ``feedparser``), bad input answered with 400s, and ``status export``."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import feedparser  # type: ignore[import-untyped]
import httpx
import pytest
from click.testing import CliRunner

from cargohold.cli import main
from cargohold.metadata.status import MAJOR, OPERATIONAL
from cargohold.web.status_render import DOCUMENTS
from tests.apptypes import MakeClient
from tests.integration import statuspage
from tests.integration.authhelpers import (
    ADMIN,
    bearer,
    services_of,
    token,
    token_auth_client,
)
from tests.integration.helpers import assert_error

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

API = "/api/v1/status"
PASSWORD = "correct-horse-battery"  # noqa: S105 - a test account


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await token(client, auth=ADMIN))


async def open_incident(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Pushes fail for some",
        "body": "We are investigating failed blob uploads.",
        "impact": "major",
        "components": ["blob-storage"],
    } | fields
    response = await client.post(
        f"{API}/incidents", json=body, headers=await admin_headers(client)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def documents(client: httpx.AsyncClient) -> dict[str, Any]:
    found = {}
    for name in DOCUMENTS:
        response = await client.get(f"/api/v2/{name}")
        assert response.status_code == 200, name
        assert response.headers["access-control-allow-origin"] == "*"
        statuspage.check(name, response.json())
        found[name] = response.json()
    return found


async def test_checks_are_stored_and_shown(
    make_client: MakeClient, free_port: int
) -> None:
    # A port nothing listens on: the probes of the registry's own address fail.
    auth_client = await token_auth_client(make_client, server={"port": free_port})
    status = services_of(auth_client).status
    assert status is not None
    results = {r.component: r for r in await status.run_checks()}
    # In-process there is no listening server: the HTTP probes find nothing there.
    assert results["registry-api"].status == MAJOR
    assert results["token-service"].status == MAJOR
    assert results["blob-storage"].status == OPERATIONAL
    assert results["metadata-database"].status == OPERATIONAL
    assert results["notifications"].status == OPERATIONAL
    assert "signing-queue" not in results  # signing is off
    docs = await documents(auth_client)
    components = {c["id"]: c["status"] for c in docs["components.json"]["components"]}
    assert components["registry-api"] == "major_outage"
    assert components["blob-storage"] == "operational"
    assert docs["status.json"]["status"] == {
        "indicator": "critical",
        "description": "Major System Outage",
    }
    page = (await auth_client.get("/status")).text
    assert "Major System Outage" in page
    # 90 days per component, and the legend's "no data" key.
    assert page.count('class="status-bar ') == 90 * len(components) + 1
    assert "status-day-major_outage" in page
    assert "wrote, read and removed a probe" in page


async def test_incident_lifecycle_reads_anonymously(
    auth_client: httpx.AsyncClient,
) -> None:
    client = auth_client
    created = await open_incident(client)
    assert created["status"] == "investigating"
    docs = await documents(client)
    (unresolved,) = docs["incidents/unresolved.json"]["incidents"]
    assert unresolved["name"] == "Pushes fail for some"
    assert unresolved["impact"] == "major"
    assert [c["id"] for c in unresolved["components"]] == ["blob-storage"]
    assert docs["summary.json"]["status"]["indicator"] == "major"
    blob = next(
        c for c in docs["summary.json"]["components"] if c["id"] == "blob-storage"
    )
    assert blob["status"] == "partial_outage"  # a major incident names it
    page = (await client.get("/status")).text
    assert "We are investigating failed blob uploads." in page

    headers = await admin_headers(client)
    response = await client.post(
        f"{API}/incidents/{created['id']}/updates",
        json={"status": "resolved", "body": "Storage replaced; all uploads work."},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["resolved_at"] is not None
    docs = await documents(client)
    assert docs["incidents/unresolved.json"]["incidents"] == []
    (past,) = docs["incidents.json"]["incidents"]
    assert [u["status"] for u in past["incident_updates"]] == [
        "resolved",
        "investigating",
    ]
    assert docs["status.json"]["status"]["indicator"] == "none"
    page = (await client.get("/status")).text
    past_section = page.split("Past incidents", 1)[1]
    assert "Storage replaced; all uploads work." in past_section

    feed = feedparser.parse((await client.get("/status/history.atom")).content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    (entry,) = feed.entries
    assert entry.title == "Pushes fail for some"
    assert "Storage replaced" in entry.summary
    assert entry.link.endswith(f"/status#{created['id']}")
    # Closed: no more updates.
    response = await client.post(
        f"{API}/incidents/{created['id']}/updates",
        json={"status": "monitoring", "body": "again"},
        headers=headers,
    )
    assert_error(response, 400, "INVALID_REQUEST")


async def test_maintenance_window_shows_and_marks_components(
    auth_client: httpx.AsyncClient,
) -> None:
    client = auth_client
    headers = await admin_headers(client)
    response = await client.post(
        f"{API}/maintenances",
        json={
            "name": "Database upgrade",
            "body": "Moving to PostgreSQL 17.",
            "scheduled_for": "2020-01-01T00:00:00Z",
            "scheduled_until": "2100-01-01T00:00:00Z",
            "components": ["metadata-database"],
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    window = response.json()
    docs = await documents(client)
    (active,) = docs["scheduled-maintenances/upcoming.json"]["scheduled_maintenances"]
    assert active["scheduled_for"] == "2020-01-01T00:00:00.000Z"
    database = next(
        c
        for c in docs["components.json"]["components"]
        if c["id"] == "metadata-database"
    )
    assert database["status"] == "under_maintenance"
    assert docs["status.json"]["status"]["indicator"] == "maintenance"
    await client.post(
        f"{API}/maintenances/{window['id']}/updates",
        json={"status": "in_progress", "body": "Started."},
        headers=headers,
    )
    docs = await documents(client)
    assert (
        len(docs["scheduled-maintenances/active.json"]["scheduled_maintenances"]) == 1
    )
    assert "Database upgrade" in (await client.get("/status")).text


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/incidents", {"name": "x", "body": "y", "status": "fine"}, "'status'"),
        ("/incidents", {"name": "x", "body": "y", "impact": "huge"}, "'impact'"),
        ("/incidents", {"name": "x", "body": "y", "components": ["nope"]}, "nope"),
        ("/incidents", {"name": " ", "body": "y"}, "'name' must not be empty"),
        ("/incidents", {"name": "x" * 256, "body": "y"}, "'name' is longer"),
        ("/incidents", {"name": "x"}, "'body' is required"),
        ("/incidents", {"name": "x", "body": "y", "extra": 1}, "unknown field"),
        ("/incidents", {"name": "x", "body": "y", "components": "api"}, "list"),
        (
            "/maintenances",
            {"name": "x", "body": "y", "scheduled_for": "tomorrow",
             "scheduled_until": "2030-01-01T00:00:00Z"},
            "ISO 8601",
        ),
        (
            "/maintenances",
            {"name": "x", "body": "y", "scheduled_for": "2030-01-01T00:00:00",
             "scheduled_until": "2030-01-02T00:00:00Z"},
            "time zone",
        ),
        (
            "/maintenances",
            {"name": "x", "body": "y", "scheduled_for": "2030-01-02T00:00:00Z",
             "scheduled_until": "2030-01-01T00:00:00Z"},
            "after",
        ),
        ("/incidents/nosuch/updates", {"status": "resolved", "body": "y"},
         "no incident"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_clear_400_or_404(
    auth_client: httpx.AsyncClient, path: str, body: dict[str, Any], message: str
) -> None:
    response = await auth_client.post(
        API + path, json=body, headers=await admin_headers(auth_client)
    )
    assert response.status_code in (400, 404), response.text
    assert message in response.json()["errors"][0]["detail"]


async def test_only_administrators_manage(auth_client: httpx.AsyncClient) -> None:
    client = auth_client
    created = await client.post(
        "/api/v1/users",
        json={"name": "alice", "password": PASSWORD},
        headers=await admin_headers(client),
    )
    assert created.status_code == 201, created.text
    alice = bearer(await token(client, auth=("alice", PASSWORD)))
    for method, path in (
        ("GET", "/incidents"),
        ("POST", "/incidents"),
        ("GET", "/maintenances"),
        ("POST", "/maintenances/x/updates"),
    ):
        body = {"name": "x", "body": "y"} if method == "POST" else None
        anonymous = await client.request(method, API + path, json=body)
        assert_error(anonymous, 401, "UNAUTHORIZED")
        user = await client.request(method, API + path, json=body, headers=alice)
        assert_error(user, 403, "DENIED")
    # Reading the page needs nothing.
    assert (await client.get("/status")).status_code == 200


async def test_no_answer_for_unknown_documents(auth_client: httpx.AsyncClient) -> None:
    assert (await auth_client.get("/api/v2/nothing.json")).status_code == 404


def test_export_writes_a_static_site(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    runner = CliRunner()
    opened = runner.invoke(
        main,
        ["status", "incident", "create", "Slow pulls", "-m", "Pulls are slow.",
         "--impact", "minor", "--component", "blob-storage", "--data-dir", str(data)],
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    incident_id = opened.output.split()[-1]
    listed = runner.invoke(
        main, ["status", "incident", "list", "--data-dir", str(data)]
    )
    assert incident_id in listed.output
    bad = runner.invoke(
        main,
        ["status", "incident", "resolve", "nosuch", "-m", "x", "--data-dir", str(data)],
    )
    assert bad.exit_code == 1
    assert "no incident" in bad.output
    out = tmp_path / "site"
    exported = runner.invoke(
        main, ["status", "export", str(out), "--data-dir", str(data)]
    )
    assert exported.exit_code == 0, exported.output
    page = (out / "index.html").read_text()
    assert "Pulls are slow." in page
    assert 'href="static/cargohold.css"' in page
    assert 'href="api/v2/summary.json"' in page
    # Nothing points at the registry's own paths but the layout's header links
    # (absolute when server.public_url is set; there is none here).
    assert set(re.findall(r'href="(/[^"]*)"', page)) <= {"/", "/network"}
    assert (out / "static" / "cargohold.css").read_text().startswith("/*")
    for name in DOCUMENTS:
        statuspage.check(name, json.loads((out / "api" / "v2" / name).read_text()))
    feed = feedparser.parse((out / "history.atom").read_bytes())
    assert not feed.bozo
    assert [e.title for e in feed.entries] == ["Slow pulls"]
