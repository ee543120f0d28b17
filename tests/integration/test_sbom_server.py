"""SBOMs from a real ``cargohold serve --workers 2``: images built here from this
machine (its dpkg status, this virtualenv's dist-info, npm's own node_modules, a Go
binary) and apk fixtures, pushed over /v2; the ``describe`` job runs in the outbox;
the SBOM is read through the API and the CLI and checked with tools we did not write
(``dpkg-query``, ``importlib.metadata``, ``spdx-tools``, ``cyclonedx-python-lib``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
import structlog
from click.testing import CliRunner
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from cargohold.cli import main
from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from tests.contract.conftest import POSTGRES_URL, POSTGRES_URL_VARIABLE, reset
from tests.images import Image, image, layer
from tests.integration.helpers import digest_of
from tests.integration.serverproc import ServerProcess, check_log
from tests.prerequisites import skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT_PASSWORD = "root-password-123"  # noqa: S105 - test accounts
BOB_PASSWORD = "bob-password-123"  # noqa: S105
ROOT = ("root", ROOT_PASSWORD)
REPO = "acme/app"
# A fresh server on PostgreSQL has been seen to take ~30 s before its outbox
# leases the first job (under investigation); the bound leaves room for that.
WAIT = 180.0
GO_BINARIES = ("/usr/bin/umoci", "/usr/bin/skopeo")
NPM_TREE = Path("/usr/lib/node_modules/npm/node_modules")

APK = b"""P:musl
V:1.2.4-r2
A:x86_64
L:MIT

P:zlib
V:1.3.1-r0
A:x86_64
L:Zlib
"""


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture(params=["sqlite", "postgresql"])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    data = tmp_path / "data"
    data.mkdir()
    settings = {
        "CARGOHOLD_AUTH_MODE": "token",
        "CARGOHOLD_ADMIN_USER": "root",
        "CARGOHOLD_ADMIN_PASSWORD": ROOT_PASSWORD,
        "CARGOHOLD_SERVER_WORKERS": "2",
        "CARGOHOLD_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    }
    if request.param == "postgresql":
        if not POSTGRES_URL:
            skip_or_fail(f"{POSTGRES_URL_VARIABLE} is not set")
        db = Database(POSTGRES_URL)
        reset(db)
        upgrade(db)
        asyncio.run(db.close())
        settings["CARGOHOLD_DATABASE_URL"] = POSTGRES_URL
    process = ServerProcess(data, tmp_path / "server.log", settings=settings)
    process.start()
    try:
        yield process
    finally:
        process.stop()
    check_log(process, request)


def _token(client: httpx.Client, scope: str) -> dict[str, str]:
    response = client.get(
        "/token", params={"service": "cargohold", "scope": scope}, auth=ROOT
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def push(client: httpx.Client, built: Image, tag: str, repo: str = REPO) -> str:
    headers = _token(client, f"repository:{repo}:pull,push")
    for blob in built.blobs:
        response = client.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest_of(blob)},
            content=blob,
            headers=headers,
        )
        assert response.status_code == 201, response.text
    response = client.put(
        f"/v2/{repo}/manifests/{tag}",
        content=built.manifest,
        headers=headers
        | {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


def sbom(
    client: httpx.Client,
    digest: str,
    fmt: str = "spdx",
    *,
    auth: tuple[str, str] | None = ROOT,
    repo: str = REPO,
) -> httpx.Response:
    return client.get(
        f"/api/v1/repositories/{repo}/manifests/{digest}/sbom",
        params={"format": fmt},
        auth=auth,
    )


def describe_job(server: ServerProcess, digest: str) -> str:
    """The ``describe`` outbox row of ``digest``, for a failure's message."""
    url = server.settings.get(
        "CARGOHOLD_DATABASE_URL", f"sqlite:///{server.data_dir / 'cargohold.db'}"
    )
    db = Database(url)
    o = t.outbox.c
    query = sa.select(o.state, o.attempts, o.holder, o.last_error).where(
        o.key.like(f"describe:%@{digest}")
    )
    try:
        return repr(db.run_sync(lambda conn: conn.execute(query).first()))
    finally:
        asyncio.run(db.close())


def wait_described(
    server: ServerProcess, client: httpx.Client, digest: str, *, repo: str = REPO
) -> dict[str, Any]:
    """The SPDX document once the describe job ran (404 until then), bounded."""
    deadline = time.monotonic() + WAIT
    while True:
        response = sbom(client, digest, repo=repo)
        if response.status_code != 404 or time.monotonic() > deadline:
            assert response.status_code == 200, (
                response.text,
                describe_job(server, digest),
                server.log_tail(),
            )
            document: dict[str, Any] = response.json()
            return document
        time.sleep(0.2)


def spdx_packages(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(purl type, name, version) of every package but the image's own."""
    found = set()
    for package in document["packages"]:
        if package["SPDXID"] == "SPDXRef-Image":
            continue
        purl = package["externalRefs"][0]["referenceLocator"]
        found.add((purl[4 : purl.index("/")], package["name"], package["versionInfo"]))
    return found


def host_dpkg() -> set[tuple[str, str, str]]:
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}\t${Package}\t${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        ("deb", name, version)
        for state, name, version in (line.split("\t") for line in listed.splitlines())
        if state == "installed"
    }


def venv_layer() -> tuple[bytes, set[tuple[str, str, str]]]:
    """This virtualenv's dist-info METADATA files, and what importlib says of them."""
    files: dict[str, bytes | None] = {}
    expected = set()
    for dist in importlib.metadata.distributions():
        path = getattr(dist, "_path", None)
        if not isinstance(path, Path) or path.suffix != ".dist-info":
            continue
        metadata = path / "METADATA"
        if not metadata.is_file():
            continue
        files[f"opt/venv/lib/site-packages/{path.name}/METADATA"] = (
            metadata.read_bytes()
        )
        expected.add(("pypi", dist.metadata["Name"], dist.version))
    return layer(files, compression="gzip"), expected


def npm_layer() -> tuple[bytes, set[tuple[str, str, str]]]:
    """npm's own node_modules (package.json files), or a written tree without npm."""
    files: dict[str, bytes | None] = {}
    if NPM_TREE.is_dir():
        for manifest in sorted(NPM_TREE.glob("*/package.json")) + sorted(
            NPM_TREE.glob("@*/*/package.json")
        ):
            relative = manifest.relative_to(NPM_TREE.parent)
            files[f"usr/lib/node_modules/npm/{relative}"] = manifest.read_bytes()
    else:
        files["app/node_modules/left-pad/package.json"] = (
            b'{"name": "left-pad", "version": "1.3.0"}'
        )
    expected = set()
    for content in files.values():
        assert content is not None
        document = json.loads(content)
        if isinstance(document.get("version"), str) and document.get("name"):
            expected.add(("npm", document["name"], document["version"]))
    return layer(files, compression="none"), expected


def go_binary() -> Path | None:
    for candidate in GO_BINARIES:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def test_an_image_from_this_machine_is_described(server: ServerProcess) -> None:
    status = Path("/var/lib/dpkg/status")
    if not status.is_file():
        skip_or_fail("no dpkg status on this machine")
    layers = [
        layer(
            {
                "etc/os-release": Path("/etc/os-release").read_bytes(),
                "var/lib/dpkg/status": status.read_bytes(),
            },
            compression="zstd",
        )
    ]
    python_layer, python_expected = venv_layer()
    node_layer, node_expected = npm_layer()
    assert len(python_expected) > 10  # the venv's own distributions, read
    assert node_expected
    layers += [python_layer, node_layer]
    kinds = ["zstd", "gzip", "none"]
    binary = go_binary()
    if binary is not None:
        layers.append(
            layer({"usr/local/bin/tool": binary.read_bytes()}, compression="zstd")
        )
        kinds.append("zstd")
    built = image(layers, compressions=kinds, labels={"team": "sbom"})
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        digest = push(client, built, "v1")
        document = wait_described(server, client, digest)
        found = spdx_packages(document)
        assert {p for p in found if p[0] == "deb"} == host_dpkg()
        assert {p for p in found if p[0] == "pypi"} == python_expected
        assert {p for p in found if p[0] == "npm"} == node_expected
        if binary is not None:
            strings = subprocess.run(
                ["strings", "-n", "6", str(binary)], capture_output=True, check=True
            ).stdout
            go = {p for p in found if p[0] == "golang"}
            assert len(go) >= 1
            assert all(f"go{version}".encode() in strings for _, _, version in go)
        path = Path(server.data_dir.parent / "sbom.spdx.json")
        path.write_text(json.dumps(document))
        assert validate_full_spdx_document(parse_file(str(path)), "SPDX-2.3") == []
        cyclonedx = sbom(client, digest, "cyclonedx")
        assert cyclonedx.status_code == 200, cyclonedx.text
        assert (
            JsonStrictValidator(SchemaVersion.V1_6).validate_str(cyclonedx.text) is None
        )
        assert len(cyclonedx.json()["components"]) == len(found)
        bad = sbom(client, digest, "xml")
        assert bad.status_code == 400
        assert "format must be one of spdx, cyclonedx" in bad.text


def test_whiteouts_apk_and_who_may_read(server: ServerProcess) -> None:
    lower = layer(
        {
            "etc/os-release": b'ID=alpine\nVERSION_ID="3.20.0"\n',
            "lib/apk/db/installed": APK,
            "usr/lib/python3.12/site-packages/six-1.16.0.dist-info/METADATA": (
                b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n"
            ),
        }
    )
    upper = layer({"usr/lib/python3.12/site-packages/.wh.six-1.16.0.dist-info": b""})
    built = image([lower, upper])
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        digest = push(client, built, "alpine")
        document = wait_described(server, client, digest)
        assert spdx_packages(document) == {
            ("apk", "musl", "1.2.4-r2"),
            ("apk", "zlib", "1.3.1-r0"),
        }
        purls = {p["externalRefs"][0]["referenceLocator"] for p in document["packages"]}
        assert "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.20.0" in purls

        # The CLI, remotely, as a table.
        result = CliRunner().invoke(
            main,
            ["sbom", f"{REPO}:alpine", "--registry", server.url, "-u", "root"],
            env={"CARGOHOLD_PASSWORD": ROOT_PASSWORD},
        )
        assert result.exit_code == 0, result.output
        assert "musl" in result.stdout
        assert "pkg:apk/alpine/zlib@1.3.1-r0" in result.stdout

        # Someone without a grant on the (private) repository: the same 404 as for
        # a digest that does not exist.
        added = CliRunner().invoke(
            main,
            ["users", "add", "bob", "--registry", server.url, "-u", "root"],
            env={
                "CARGOHOLD_PASSWORD": ROOT_PASSWORD,
                "CARGOHOLD_NEW_PASSWORD": BOB_PASSWORD,
            },
        )
        assert added.exit_code == 0, added.output
        refused = sbom(client, digest, auth=("bob", BOB_PASSWORD))
        missing = sbom(client, "sha256:" + "0" * 64)
        assert refused.status_code == missing.status_code == 404
        assert sbom(client, digest, auth=("bob", "wrong")).status_code == 401
        # Another repository does not hold this manifest.
        assert sbom(client, digest, repo="acme/other").status_code == 404
        # Anonymous: nothing of a private repository.
        assert sbom(client, digest, auth=None).status_code == 404


def remote(server: ServerProcess) -> list[str]:
    return ["--registry", server.url, "-u", "root"]


def test_anonymous_callers_read_what_they_may_pull(server: ServerProcess) -> None:
    public = "acme/pub"
    starter = image([layer({"lib/apk/db/installed": APK})], labels={"n": "1"})
    other = image([layer({"lib/apk/db/installed": APK})], labels={"n": "2"})
    made = CliRunner().invoke(
        main,
        ["repos", "set", public, "--visibility", "public", *remote(server)],
        env={"CARGOHOLD_PASSWORD": ROOT_PASSWORD},
    )
    assert made.exit_code == 0, made.output
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        latest = push(client, starter, "latest", repo=public)
        v1 = push(client, other, "v1", repo=public)
        for digest in (latest, v1):
            wait_described(server, client, digest, repo=public)
        anonymous = sbom(client, latest, "cyclonedx", auth=None, repo=public)
        assert anonymous.status_code == 200, anonymous.text
        assert anonymous.json()["metadata"]["component"]["version"] == latest
        by_tag = sbom(client, "latest", auth=None, repo=public)
        assert by_tag.status_code == 200, by_tag.text
        # Described, but reached by no starter tag: the same answer as nothing.
        assert sbom(client, v1, auth=None, repo=public).status_code == 404
        assert sbom(client, v1, repo=public).status_code == 200


def test_a_layer_that_is_not_a_tar_fails_the_description_clearly(
    server: ServerProcess,
) -> None:
    built = image([b"\x1f\x8b\x08\x00 this is no gzip stream" * 20])
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        digest = push(client, built, "broken")
        deadline = time.monotonic() + WAIT
        response = sbom(client, digest)
        while response.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.2)
            response = sbom(client, digest)
        assert response.status_code == 409, (
            response.text,
            describe_job(server, digest),
            server.log_tail(),
        )
        assert "not a readable tar layer" in response.text
