"""The status page in Debian's Chromium: a recorded incident shows, at 375 px wide,
with nothing loaded from another origin; screenshots at phone and desktop width."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.browser.conftest import DESKTOP, PHONE, Pages
from tests.integration.serverproc import ServerProcess, run_cli

# Bound on waiting for the first check round (they come every second here).
FIRST_ROUND_SECONDS = 20.0


def cli(server: ServerProcess, *args: str) -> str:
    """The CLI in its own process (Playwright's loop runs in this one)."""
    done = run_cli(*args, data_dir=server.data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def first_round(server: ServerProcess) -> None:
    deadline = time.monotonic() + FIRST_ROUND_SECONDS
    while time.monotonic() < deadline:
        if "Last check" in httpx.get(f"{server.url}/status", timeout=5).text:
            return
        time.sleep(0.2)
    pytest.fail(f"no check round within {FIRST_ROUND_SECONDS:.0f} s")


def test_status_page_shows_a_recorded_incident_at_phone_width(
    server: ServerProcess, pages: Pages
) -> None:
    server.settings["CARGOHOLD_STATUS_INTERVAL_SECONDS"] = "1"
    server.start()
    opened = cli(
        server,
        "status", "incident", "create", "Blob downloads are slow",
        "-m", "Downloads from blob storage take minutes; we are on it.",
        "--impact", "major", "--component", "blob-storage",
    )  # fmt: skip
    incident_id = opened.split()[-1]
    cli(
        server,
        "status", "maintenance", "schedule", "Database upgrade",
        "-m", "The metadata database moves to new disks.",
        "--from", "2099-01-01T01:00:00Z", "--until", "2099-01-01T02:00:00Z",
        "--component", "metadata-database",
    )  # fmt: skip
    first_round(server)

    phone = pages.open(server.url, viewport=PHONE)
    failed: list[str] = []
    phone.page.on(
        "response", lambda r: failed.append(r.url) if r.status >= 400 else None
    )
    response = phone.page.goto("/status")
    assert response is not None
    assert response.status == 200
    page = phone.page
    assert page.locator("#overall").inner_text() == "Partial System Outage"
    incident = page.locator(f'article[id="{incident_id}"]')
    assert incident.locator("h2").inner_text() == "Blob downloads are slow"
    assert "we are on it" in incident.inner_text()
    assert incident.is_visible()
    blob = page.locator("#component-blob-storage")
    assert "Partial outage" in blob.inner_text()
    assert blob.locator(".status-bar").count() == 90
    # Today's bar has data; the page holds no data for days before the server ran.
    assert "status-day-none" in (
        blob.locator(".status-bar").nth(0).get_attribute("class") or ""
    )
    assert "status-day-none" not in (
        blob.locator(".status-bar").nth(89).get_attribute("class") or ""
    )
    assert "Database upgrade" in page.locator("body").inner_text()
    # Nothing wider than the phone: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # The stylesheet applied (the banner is coloured, not the default transparent).
    background = page.locator("#overall").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    assert phone.shoot("status-phone").stat().st_size > 0

    desktop = pages.open(server.url, viewport=DESKTOP)
    desktop.page.goto("/status")
    assert desktop.page.locator(f'article[id="{incident_id}"]').is_visible()
    assert desktop.shoot("status-desktop").stat().st_size > 0
    # Every resource the page uses loads (the browser's own favicon probe aside:
    # the layout names no icon).
    assert [url for url in failed if not url.endswith("/favicon.ico")] == []
