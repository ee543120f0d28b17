"""The browser tier: Debian's headless Chromium, driven by Playwright for Python.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium``
(installed by ``scripts/setup.sh``). Every page a test opens is watched: a request to
any origin but the registry's fails the test, and ``shoot`` saves a full-page
screenshot under ``test-output/screenshots/`` (or ``$CARGOHOLD_SCREENSHOTS``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

# Real servers, as in the integration tier.
from tests.integration.conftest import server, workdir  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
# Read at import: the autouse fixture that cleans CARGOHOLD_* runs before each test.
_SCREENSHOTS = Path(
    os.environ.get("CARGOHOLD_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
)
# Quiet, offline Chromium: no background fetches to Google, no sandbox (root in CI).
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API marks its event loop as
    # running in this thread while it is open, so async tests after it could not run.
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: run scripts/setup.sh (installs chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page plus what it requested; ``foreign`` lists requests off ``origin``."""

    def __init__(self, context: BrowserContext, origin: str, name: str) -> None:
        self.context = context
        self.origin = origin
        self.name = name
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.page: Page = context.new_page()
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.page.on(
            "console",
            lambda msg: (
                self.console_errors.append(msg.text) if msg.type == "error" else None
            ),
        )

    @property
    def foreign(self) -> list[str]:
        own = urlsplit(self.origin)
        return [
            url
            for url in self.requests
            if not url.startswith(("data:", "about:"))
            and (urlsplit(url).scheme, urlsplit(url).netloc) != (own.scheme, own.netloc)
        ]

    def shoot(self, label: str) -> Path:
        """Save a full-page screenshot named after the test and ``label``."""
        _SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{self.name}-{label}").strip("-")
        path = _SCREENSHOTS / f"{safe}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


class Pages:
    """Opens watched pages against one registry origin; checks them at the end."""

    def __init__(self, browser: Browser, name: str) -> None:
        self.browser = browser
        self.name = name
        self.opened: list[Watched] = []
        self._contexts: list[BrowserContext] = []

    def open(
        self, origin: str, *, viewport: dict[str, int] | None = None, **options: object
    ) -> Watched:
        """A new page in a fresh context (its own cookies) for ``origin``."""
        context = self.browser.new_context(
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            base_url=origin,
            **options,  # type: ignore[arg-type]
        )
        # A stray request must fail fast, never hang on a closed network.
        context.set_default_timeout(15_000)
        self._contexts.append(context)
        watched = Watched(context, origin, f"{self.name}-{len(self.opened)}")
        self.opened.append(watched)
        return watched

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """Open pages with ``pages.open(origin)``; fails if any page left the origin."""
    opened = Pages(browser, request.node.name)
    try:
        yield opened
    finally:
        opened.close()
    foreign = [url for watched in opened.opened for url in watched.foreign]
    assert not foreign, f"requests left the registry's origin: {foreign}"
