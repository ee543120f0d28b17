"""``/network``, ``cargohold network`` and ``cargohold doctor`` against real servers.

Servers: ``cargohold serve`` over plain HTTP with token auth, over TLS with a test CA
(``tests/tls.py``), and Debian's ``docker-registry`` (CNCF Distribution 2.8) as a
foreign registry. The page is parsed with the standard library's ``html.parser``.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, ClassVar

import httpx
import pytest

from tests.integration.helpers import digest_of, image_manifest, push_image_to
from tests.integration.serverproc import (
    NO_AUTH,
    ServerProcess,
    check_log,
    clean_environ,
    free_port,
)
from tests.tls import self_signed

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROOT_PASSWORD = "network-root-password"  # noqa: S105 - a test's own administrator
PUBLIC_HOST = "registry.example.test"
CLI_TIMEOUT = 120.0


def cli(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=clean_environ(**settings),
        check=False,
    )


def steps(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Step name → status, from ``doctor``'s output."""
    found = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in {"ok", "FAIL", "skip"}:
            found[rest.strip().split("  ")[0]] = status
    return found


@pytest.fixture
def token_server(
    workdir: Path, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    process = ServerProcess(workdir / "data", workdir / "server.log", settings={
        "CARGOHOLD_AUTH_MODE": "token",
        "CARGOHOLD_ADMIN_USER": "root",
        "CARGOHOLD_ADMIN_PASSWORD": ROOT_PASSWORD,
        "CARGOHOLD_SERVER_PUBLIC_URL": f"https://{PUBLIC_HOST}",
    })  # fmt: skip
    process.start()
    try:
        with httpx.Client(base_url=process.url, timeout=30) as client:
            response = client.get(
                "/token",
                params={
                    "service": "cargohold",
                    "scope": "repository:acme/secret-app:pull,push",
                },
                auth=("root", ROOT_PASSWORD),
            )
            assert response.status_code == 200, response.text
            bearer = {"Authorization": f"Bearer {response.json()['token']}"}
            push_image_to(client, "acme/secret-app", "1.0", headers=bearer)
        yield process
    finally:
        process.stop()
    check_log(process, request)


class _Resources(HTMLParser):
    """Every URL the page would load (stylesheets, scripts, images) or inline style."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and values.get("href"):
            self.loads.append(values["href"] or "")
        if tag in {"script", "img", "iframe"}:
            self.loads.append(values.get("src") or "(inline)")
        if tag == "style" or "style" in values:
            self.inline.append(tag)


def test_page_names_the_public_host_and_nothing_private(
    token_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=token_server.url, timeout=30) as client:
        page = client.get("/network")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert f"https://{PUBLIC_HOST}" in page.text
        assert "TCP 443" in page.text
        assert "Artifactory" in page.text
        assert "Nexus" in page.text
        assert "starter tags (latest, latest-dev)" in page.text
        assert "secret-app" not in page.text
        assert "acme" not in page.text
        resources = _Resources()
        resources.feed(page.text)
        assert resources.loads == ["/static/cargohold.css"]
        assert resources.inline == []
        css = client.get("/static/cargohold.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "@media" in css.text

        document = client.get("/network.json")
        assert document.status_code == 200
        data = document.json()
        assert "secret-app" not in document.text
    assert data["registry_host"] == PUBLIC_HOST
    assert [(e["host"], e["port"], e["tls"]) for e in data["endpoints"]] == [
        (PUBLIC_HOST, 443, True)
    ]
    assert [p["path"] for p in data["paths"]] == [
        "/v2/",
        "/token",
        "/extensions/v2/",
        "/.well-known/cargohold/",
    ]
    assert data["blob_redirects"] is False
    assert {c["product"] for c in data["caches"]} == {
        "JFrog Artifactory",
        "Sonatype Nexus Repository",
        "Google Artifact Registry",
        "Cloudsmith",
    }


def test_network_cli_follows_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "cargohold.toml"
    config.write_text(
        "[server]\nport = 5443\n"
        f'public_url = "https://{PUBLIC_HOST}:8443"\n'
        '[auth]\nrealm = "https://auth.example.test/token"\n'
    )
    result = cli("network", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(e["role"], e["host"], e["port"]) for e in data["endpoints"]] == [
        ("registry", PUBLIC_HOST, 8443),
        ("token realm", "auth.example.test", 443),
    ]
    text = cli("network", "--config", str(config))
    assert text.returncode == 0, text.stderr
    assert f"registry: https://{PUBLIC_HOST}:8443  (TCP 8443, TLS)" in text.stdout
    assert "token realm: https://auth.example.test" in text.stdout
    bad = cli("network", CARGOHOLD_SERVER_PUBLIC_URL="ftp://x")
    assert bad.returncode == 2
    assert "public_url" in bad.stderr


def test_doctor_passes_with_credentials_and_names_what_fails_without(
    token_server: ServerProcess,
) -> None:
    image = ["--image", "acme/secret-app:1.0"]
    good = cli("doctor", token_server.url, *image, "--username", "root",
               "--password", ROOT_PASSWORD)  # fmt: skip
    assert good.returncode == 0, good.stdout
    assert steps(good) == {
        "resolve": "ok",
        "connect": "ok",
        "GET /v2/": "ok",
        "token": "ok",
        "token (pull scope)": "ok",
        "manifest": "ok",
        "blob": "ok",
    }, good.stdout
    assert "verified" in good.stdout

    at = ("--registry", token_server.url, "--username", "root")
    cli("orgs", "add", "acme", *at, CARGOHOLD_PASSWORD=ROOT_PASSWORD)  # may exist
    created = cli("tokens", "create", "acme", "-d", "doctor", "--json", *at,
                  CARGOHOLD_PASSWORD=ROOT_PASSWORD)  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = json.loads(created.stdout)["secret"]
    pull_token = cli("doctor", token_server.url, *image, "--token", secret)
    assert pull_token.returncode == 0, pull_token.stdout
    assert "issued a token with credentials" in pull_token.stdout

    anonymous = cli("doctor", token_server.url, *image)
    assert anonymous.returncode == 1
    assert steps(anonymous)["manifest"] == "FAIL", anonymous.stdout
    assert "starter tags of public repositories" in anonymous.stdout

    unknown = cli("doctor", token_server.url, "--image", "acme/secret-app:nope",
                  "--username", "root", "--password", ROOT_PASSWORD)  # fmt: skip
    assert unknown.returncode == 1
    assert "404 (unknown repository or tag)" in unknown.stdout

    wrong = cli("doctor", token_server.url, "--username", "root", "--password", "no")
    assert wrong.returncode == 1
    assert steps(wrong).get("token") == "FAIL", wrong.stdout
    assert "refused the credentials" in wrong.stdout


def test_doctor_on_a_closed_port_says_connect_failed() -> None:
    port = free_port()  # nothing listens on it
    result = cli("doctor", f"http://127.0.0.1:{port}", "--image", "a/b:1")
    assert result.returncode == 1
    assert steps(result) == {
        "resolve": "ok",
        "connect": "FAIL",
        "version check": "skip",
        "manifest and blob": "skip",
    }, result.stdout
    assert "nothing listens on 127.0.0.1 port" in result.stdout


def test_doctor_bad_arguments_exit_2() -> None:
    assert cli("doctor", "ftp://x").returncode == 2
    assert cli("doctor", "127.0.0.1:1", "--image", "no-tag").returncode == 2
    assert cli("doctor", "127.0.0.1:1", "--username", "u").returncode == 2


@dataclass
class TlsServer(ServerProcess):
    """``cargohold serve`` over HTTPS with ``tests/tls.py``'s certificate."""

    cert: Path | None = None
    key: Path | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            *super().argv(),
            "--tls-cert",
            str(self.cert),
            "--tls-key",
            str(self.key),
        ]

    def _answers(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.cert))
        try:
            response = httpx.get(f"{self.url}/v2/", timeout=2.0, verify=context)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


@pytest.fixture
def tls_server(workdir: Path, request: pytest.FixtureRequest) -> Iterator[TlsServer]:
    cert, key = self_signed(workdir)
    process = TlsServer(
        workdir / "data", workdir / "server.log", settings=NO_AUTH, cert=cert, key=key
    )
    process.start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=process.url, verify=context, timeout=30) as client:
            push_image_to(client, "acme/app", "1.0")
        yield process
    finally:
        process.stop()
    check_log(process, request)


def test_doctor_over_tls(tls_server: TlsServer) -> None:
    ca = ["--ca-file", str(tls_server.cert)]
    good = cli("doctor", tls_server.url, "--image", "acme/app:1.0", *ca)
    assert good.returncode == 0, good.stdout
    assert steps(good)["tls"] == "ok"
    assert "certificate for 127.0.0.1" in good.stdout

    # The certificate names 127.0.0.1 only; localhost resolves there all the same.
    by_name = f"https://localhost:{tls_server.port}"
    mismatch = cli("doctor", by_name, "--image", "acme/app:1.0", *ca)
    assert mismatch.returncode == 1
    assert steps(mismatch)["tls"] == "FAIL", mismatch.stdout
    assert "does not name localhost" in mismatch.stdout

    untrusted = cli("doctor", tls_server.url)  # the system trust store
    assert untrusted.returncode == 1
    assert steps(untrusted)["tls"] == "FAIL", untrusted.stdout
    assert "does not trust the certificate" in untrusted.stdout

    plain = cli("doctor", f"http://127.0.0.1:{tls_server.port}")
    assert plain.returncode == 1
    assert steps(plain)["GET /v2/"] == "FAIL", plain.stdout


@pytest.fixture
def distribution(workdir: Path) -> Iterator[str]:
    """Debian's ``docker-registry`` (Distribution 2.8) on a free port: its URL."""
    binary = shutil.which("docker-registry")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-registry is missing (scripts/setup.sh installs it)")
        pytest.skip(
            "docker-registry is not installed (apt-get install docker-registry)"
        )
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: info}\n"
        f"storage:\n  filesystem: {{rootdirectory: {workdir / 'dist'}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    url = f"http://127.0.0.1:{port}"
    with (workdir / "distribution.log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, "docker-registry exited"
            try:
                if httpx.get(f"{url}/v2/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)  # not listening yet: poll, bounded by the deadline
        else:
            pytest.fail("docker-registry did not answer in 30 s")
        with httpx.Client(base_url=url, timeout=30) as client:
            push_in_two_steps(client, "library/tool", "2.8")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def push_in_two_steps(client: httpx.Client, repo: str, tag: str) -> None:
    """POST then PUT each blob (Distribution 2.8 has no single-POST upload)."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = b"distribution layer" * 100
    for blob in (config, layer):
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        # The Location carries its own query (_state): add the digest to it.
        location = httpx.URL(started.headers["Location"])
        target = location.copy_merge_params({"digest": digest_of(blob)})
        done = client.put(target, content=blob)
        assert done.status_code == 201, done.text
    response = client.put(
        f"/v2/{repo}/manifests/{tag}",
        content=image_manifest(config, [layer]),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.text


def test_doctor_against_distribution(distribution: str) -> None:
    good = cli("doctor", distribution, "--image", "library/tool:2.8")
    assert good.returncode == 0, good.stdout
    assert steps(good) == {
        "resolve": "ok",
        "connect": "ok",
        "GET /v2/": "ok",
        "manifest": "ok",
        "blob": "ok",
    }, good.stdout
    assert "API registry/2.0" in good.stdout
    unknown = cli("doctor", distribution, "--image", "library/tool:missing")
    assert unknown.returncode == 1
    assert "404 (unknown repository or tag)" in unknown.stdout


class _Handler(BaseHTTPRequestHandler):
    """A registry that redirects blobs (to ``blob_url``), like one on object storage."""

    blobs: ClassVar[dict[str, bytes]] = {}
    manifests: ClassVar[dict[str, bytes]] = {}
    blob_url: ClassVar[str] = ""

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/v2/":
            self._send(200, b"{}", "application/json")
        elif path.startswith("/v2/acme/app/manifests/"):
            body = self.manifests.get(path.rsplit("/", 1)[1])
            kind = "index" if body and b'"manifests"' in body else "manifest"
            media_type = f"application/vnd.oci.image.{kind}.v1+json"
            self._send(404 if body is None else 200, body or b"{}", media_type)
        elif path.startswith("/v2/acme/app/blobs/"):
            self.send_response(307)
            self.send_header("Location", f"{self.blob_url}/{path.rsplit('/', 1)[1]}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.startswith("/store/") and "authorization" not in self.headers:
            self._send(
                200, self.blobs[path.rsplit("/", 1)[1]], "application/octet-stream"
            )
        else:
            self._send(404, b"{}", "application/json")

    def _send(self, status: int, body: bytes, media_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        """Quiet."""


@pytest.fixture
def redirecting() -> Iterator[tuple[str, type[_Handler]]]:
    """A stdlib HTTP server on loopback: its URL and its handler class."""

    class Handler(_Handler):
        blobs: ClassVar[dict[str, bytes]] = {}
        manifests: ClassVar[dict[str, bytes]] = {}

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    # The blob "host" is the same server under another name, as a CDN would be.
    Handler.blob_url = f"http://localhost:{port}/store"
    handler = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_doctor_follows_a_blob_redirect_and_checks_the_digest(
    redirecting: tuple[str, type[_Handler]],
) -> None:
    url, handler = redirecting
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = b"redirected layer" * 50
    child = image_manifest(config, [layer])
    handler.manifests[digest_of(child)] = child
    handler.manifests["1.0"] = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest_of(child),
            "size": len(child),
        }],
    }).encode()  # fmt: skip
    handler.blobs[digest_of(layer)] = layer
    good = cli("doctor", url, "--image", "acme/app:1.0")
    assert good.returncode == 0, good.stdout
    assert f"index.v1+json → {digest_of(child)}" in good.stdout
    assert "through a redirect to localhost:" in good.stdout
    assert "verified" in good.stdout

    handler.blobs[digest_of(layer)] = b"altered on the way"
    altered = cli("doctor", url, "--image", "acme/app:1.0")
    assert altered.returncode == 1
    assert steps(altered)["blob"] == "FAIL", altered.stdout
    assert "alters content" in altered.stdout

    handler.manifests["1.0"] = b"<html>a proxy's login page</html>"
    broken = cli("doctor", url, "--image", "acme/app:1.0")
    assert broken.returncode == 1
    assert "not a JSON object" in broken.stdout
