"""The browser tier itself: Debian's Chromium renders a real server's page."""

from __future__ import annotations

from tests.browser.conftest import PHONE, Pages
from tests.integration.serverproc import ServerProcess


def test_network_page_renders_in_chromium_at_phone_width(
    server: ServerProcess, pages: Pages
) -> None:
    server.start()
    watched = pages.open(server.url, viewport=PHONE)
    response = watched.page.goto("/network")
    assert response is not None
    assert response.status == 200
    assert watched.page.locator("h1").first.is_visible()
    # Nothing wider than the phone: no horizontal scrolling.
    width = watched.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    assert watched.shoot("network").stat().st_size > 0
