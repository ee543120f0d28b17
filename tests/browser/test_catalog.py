"""The web catalog in Debian's Chromium, over a real ``cargohold serve`` with token
auth, holding images pushed by stock skopeo from OCI layouts written here.

Checks: the home, repository and image pages show the pushed data (the SBOM read by
the registry's describe job included); signing in works and a wrong password does not;
an anonymous visitor finds the private repository by no page or search; the copy
button puts the digest-pinned command on the clipboard; nothing is wider than a
375 px phone; no request leaves the registry's origin (the ``pages`` fixture).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from cargohold.api.app import open_services
from cargohold.auth.policy import Principal
from cargohold.oci.digest import Digest
from cargohold.settings import load
from tests.browser.conftest import PHONE, Pages, Watched
from tests.images import Image, image, layer
from tests.integration.serverproc import ServerProcess, check_log
from tests.prerequisites import require

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cargohold.registry.admin import AdminService

ROOT = Principal("user", "user:root", is_admin=True)
ADMIN_PASSWORD = "root-password-123"  # noqa: S105 - test accounts
PAULA_PASSWORD = "paula-password-123"  # noqa: S105
PUBLIC = "acme/web"
PRIVATE = "acme/vault-keeper"
DESCRIPTION = "The acme web front end"
DPKG = b"""Package: libtiny1
Status: install ok installed
Architecture: amd64
Version: 1.2.3-1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1

"""

pytestmark = pytest.mark.timeout(300)


def _layout(root: Path, tag: str, built: Image) -> Path:
    """An OCI image layout holding ``built`` as ``tag``."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for blob in (*built.blobs, built.manifest):
        (blobs / Digest.of(blob).hex).write_bytes(blob)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index_path = root / "index.json"
    manifests: list[dict[str, object]] = (
        json.loads(index_path.read_text())["manifests"] if index_path.exists() else []
    )
    manifests.append(
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": built.digest,
            "size": len(built.manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }
    )
    index_path.write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return root


def _skopeo_push(layout: Path, tag: str, host: str, repo: str) -> None:
    skopeo = shutil.which("skopeo")
    assert skopeo is not None
    subprocess.run(
        [
            skopeo,
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"--dest-creds=root:{ADMIN_PASSWORD}",
            f"oci:{layout}:{tag}",
            f"docker://{host}/{repo}:{tag}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _administer(data_dir: Path, action: object) -> None:
    async def run() -> None:
        services = open_services(load(None, {}, {"data_dir": data_dir}))
        try:
            await action(services.auth.admin)  # type: ignore[operator]
        finally:
            await services.close()

    # Playwright's sync API runs an event loop on this thread: use another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    require("skopeo")
    root = tmp_path_factory.mktemp("catalog")
    server = ServerProcess(
        root / "data",
        root / "server.log",
        settings={
            "CARGOHOLD_AUTH_MODE": "token",
            "CARGOHOLD_ADMIN_USER": "root",
            "CARGOHOLD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        },
    )
    try:
        server.start()
        host = f"127.0.0.1:{server.port}"
        web = image(
            [layer({"var/lib/dpkg/status": DPKG, "srv/index.html": b"<h1>hi</h1>"})],
            labels={"org.opencontainers.image.description": DESCRIPTION},
        )
        prod = image([layer({"srv/index.html": b"<h1>prod</h1>"})])
        vault = image([layer({"etc/vault.conf": b"secret = true"})])
        _skopeo_push(_layout(root / "web", "latest", web), "latest", host, PUBLIC)
        _skopeo_push(_layout(root / "prod", "prod-1", prod), "prod-1", host, PUBLIC)
        _skopeo_push(_layout(root / "vault", "latest", vault), "latest", host, PRIVATE)

        async def setup(admin: AdminService) -> None:
            await admin.create_organization(ROOT, "acme", client="test")
            await admin.create_user(ROOT, "paula", PAULA_PASSWORD, client="test")
            await admin.set_member(ROOT, "acme", "paula", "puller", client="test")
            await admin.set_repository(
                ROOT, PUBLIC, visibility="public", starter_tags=None, client="test"
            )

        _administer(server.data_dir, setup)
        # The describe job (the SBOM) runs in the server's outbox after the push.
        deadline = time.monotonic() + 120
        url = f"{server.url}/api/v1/repositories/{PUBLIC}/manifests/latest/metadata"
        while time.monotonic() < deadline:
            found = httpx.get(url, timeout=10).json()
            if found.get("description", {}).get("state") == "done":
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the image was not described in time: {found}")
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _clean_server_log(
    registry: ServerProcess, request: pytest.FixtureRequest
) -> Iterator[None]:
    yield
    check_log(registry, request)


def _no_horizontal_scroll(watched: Watched) -> None:
    width = watched.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{watched.page.url} is {width}px wide"


def test_pages_render_real_data_for_anonymous_visitors(
    registry: ServerProcess, pages: Pages
) -> None:
    watched = pages.open(registry.url)
    page = watched.page
    page.goto("/")
    assert page.locator(f'a[href="/r/{PUBLIC}"]').is_visible()
    assert PRIVATE not in page.content()
    watched.shoot("home")

    page.click(f'a[href="/r/{PUBLIC}"]')
    page.wait_for_url(f"**/r/{PUBLIC}")
    assert page.locator("p.lead").inner_text() == DESCRIPTION
    tags = page.locator("table.tags tbody tr")
    assert tags.count() == 1  # the starter tag only
    row = tags.first.inner_text()
    assert "latest" in row
    assert "linux/amd64" in row
    assert "2 packages" in row
    assert "prod-1" not in page.content()
    watched.shoot("repository")

    page.click("table.tags tbody tr a[href*='@sha256:']")
    page.wait_for_url("**@sha256:*")
    sbom = page.locator("#sbom tbody tr")
    assert sbom.count() == 2
    # The filter (the page's one script) hides rows as you type.
    page.fill("#sbom-filter", "zlib")
    assert page.locator("#sbom tbody tr:visible").count() == 1
    assert "zlib1g" in page.locator("#sbom tbody tr:visible").inner_text()
    assert DESCRIPTION in page.content()  # the label
    watched.shoot("image")


def test_anonymous_cannot_find_the_private_repository(
    registry: ServerProcess, pages: Pages
) -> None:
    watched = pages.open(registry.url)
    page = watched.page
    missing = page.goto("/r/acme/never-was")
    assert missing is not None
    assert missing.status == 404
    nothing = page.content()
    for path in (f"/r/{PRIVATE}", f"/r/{PRIVATE}?tag=latest"):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 404
        assert page.content() == nothing
    for query in ("vault", "keeper", "acme/", "a"):
        page.goto("/")
        page.fill("#q", query)
        page.click("form.search button")
        page.wait_for_load_state()
        assert "vault" not in page.content().replace(query, "")
    watched.shoot("private-not-found")


def test_sign_in_shows_private_repositories_and_copy_pins_the_digest(
    registry: ServerProcess, pages: Pages
) -> None:
    watched = pages.open(
        registry.url, permissions=["clipboard-read", "clipboard-write"]
    )
    page = watched.page
    page.goto("/signin")
    page.fill("#username", "paula")
    page.fill("#password", "not-her-password")
    wrong = page.expect_response(
        lambda r: r.url.endswith("/signin") and r.request.method == "POST"
    )
    with wrong as info:
        page.click("form.signin button")
    assert info.value.status == 401
    assert page.locator("p.error").inner_text() == "Wrong username or password."
    watched.shoot("signin-wrong")

    page.fill("#username", "paula")
    page.fill("#password", PAULA_PASSWORD)
    page.click("form.signin button")
    page.wait_for_url(f"{registry.url}/")
    assert page.locator(f'a[href="/r/{PRIVATE}"]').is_visible()
    cookie = next(
        c for c in watched.context.cookies() if c["name"] == "cargohold_session"
    )
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"

    page.goto(f"/r/{PRIVATE}")
    button = page.locator("ul.commands button.copy").first
    command = button.get_attribute("data-copy")
    assert command is not None
    assert command.startswith(
        f"podman pull 127.0.0.1:{registry.port}/{PRIVATE}@sha256:"
    )
    button.click()
    assert page.evaluate("navigator.clipboard.readText()") == command
    watched.shoot("repository-signed-in")

    page.click("header form button")  # sign out
    page.wait_for_url(f"{registry.url}/")
    assert PRIVATE not in page.content()


def test_pages_fit_a_phone(registry: ServerProcess, pages: Pages) -> None:
    watched = pages.open(registry.url, viewport=PHONE)
    page = watched.page
    digest = httpx.get(
        f"{registry.url}/api/v1/repositories/{PUBLIC}/manifests/latest/metadata",
        timeout=10,
    ).json()["digest"]
    for label, path in (
        ("home", "/"),
        ("repository", f"/r/{PUBLIC}"),
        ("image", f"/r/{PUBLIC}@{digest}"),
        ("signin", "/signin"),
        ("notfound", f"/r/{PRIVATE}"),
    ):
        page.goto(path)
        _no_horizontal_scroll(watched)
        watched.shoot(f"phone-{label}")
