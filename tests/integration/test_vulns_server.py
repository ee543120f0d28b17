"""The vulnerability view against a real ``cargohold serve --workers 2``, by the CLI.

``cargohold vulns import`` runs as its own process on the server's data directory;
the servers' outbox workers match the images it queues; ``cargohold vulns list``
reads the result over the management API. The image's packages are written into the
database the way the SBOM part's ``describe`` job records them (``image_descriptions``,
``image_packages``): this test is about matching, not about reading layers.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from cargohold.registry.vulns import draft_id
from tests.integration.helpers import push_image_to
from tests.integration.serverproc import ServerProcess, check_log
from tests.integration.test_cli_admin import ROOT_PASSWORD, ok, remote, run

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REPO = "acme/app"
ROOT = ("root", ROOT_PASSWORD)
DEADLINE_SECONDS = 30.0
PACKAGES = [
    ("Debian", "libc6", "2.36-9+deb12u3"),
    ("Alpine", "busybox", "1.36.1-r1"),
    ("PyPI", "Requests", "2.28.1"),
    ("npm", "lodash", "4.17.20"),
    ("Go", "golang.org/x/net", "v0.16.0"),
    ("PyPI", "six", "1.16.0"),
]


def osv(ident: str, ecosystem: str, name: str, events: list[dict[str, str]],
        *, modified: str = "2026-01-01T00:00:00Z", range_type: str = "ECOSYSTEM",
        **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "id": ident,
        "modified": modified,
        "summary": f"{name} is broken",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": range_type, "events": events}],
            }
        ],
        **extra,
    }


FEED = [
    osv("DSA-0001-1", "Debian:12", "libc6",
        [{"introduced": "0"}, {"fixed": "2.36-9+deb12u4"}],
        severity=[{"type": "CVSS_V3",
                   "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]),
    osv("ALPINE-0001", "Alpine:v3.19", "busybox",
        [{"introduced": "0"}, {"fixed": "1.36.1-r2"}]),
    osv("PYSEC-0001", "PyPI", "requests",
        [{"introduced": "2.0"}, {"fixed": "2.31.0"}],
        database_specific={"severity": "MODERATE"}),
    osv("GHSA-0001", "npm", "lodash",
        [{"introduced": "4.0.0"}, {"fixed": "4.17.21"}], range_type="SEMVER"),
    osv("GO-0001", "Go", "golang.org/x/net",
        [{"introduced": "0"}, {"last_affected": "0.16.0"}]),
    # Not affected: the image's six is past the fix.
    osv("PYSEC-0002", "PyPI", "six", [{"introduced": "0"}, {"fixed": "1.16.0"}]),
]  # fmt: skip


@pytest.fixture
def server(workdir: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    process = ServerProcess(workdir / "data", workdir / "server.log", settings={
        "CARGOHOLD_AUTH_MODE": "token",
        "CARGOHOLD_ADMIN_USER": "root",
        "CARGOHOLD_ADMIN_PASSWORD": ROOT_PASSWORD,
        "CARGOHOLD_SERVER_WORKERS": "2",
    })  # fmt: skip
    process.start()
    try:
        yield process
    finally:
        process.stop()
    check_log(process, request)


def token(client: httpx.Client, actions: str) -> dict[str, str]:
    response = client.get(
        "/token",
        params={"service": "cargohold", "scope": f"repository:{REPO}:{actions}"},
        auth=ROOT,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def describe(data_dir: Path, digest: str) -> None:
    with sqlite3.connect(data_dir / "cargohold.db", timeout=30) as db:
        db.execute(
            "INSERT INTO image_descriptions (digest, repository, state, package_count,"
            " facts, described_at) VALUES (?, ?, 'done', ?, '{}', ?)",
            (digest, REPO, len(PACKAGES), time.time()),
        )
        db.executemany(
            "INSERT INTO image_packages (digest, ecosystem, name, version, purl, path)"
            " VALUES (?, ?, ?, ?, ?, '/')",
            [(digest, e, n, v, f"pkg:generic/{n}@{v}") for e, n, v in PACKAGES],
        )
    db.close()


def write_feed(root: Path, docs: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (root / doc["affected"][0]["package"]["ecosystem"].split(":")[0]).mkdir(
            exist_ok=True
        )
        path = root / doc["affected"][0]["package"]["ecosystem"].split(":")[0]
        (path / f"{doc['id']}.json").write_text(json.dumps(doc))
    return root


def listed(server: ServerProcess, reference: str) -> dict[str, Any]:
    out = ok(run("vulns", "list", reference, "--json", *remote(server),
                 CARGOHOLD_PASSWORD=ROOT_PASSWORD))  # fmt: skip
    answer: dict[str, Any] = json.loads(out)
    return answer


def wait_for(server: ServerProcess, reference: str, ids: set[str]) -> dict[str, Any]:
    """Poll the view (bounded) until it lists exactly ``ids``."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        answer = listed(server, reference)
        if {v["id"] for v in answer["vulnerabilities"]} == ids:
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)


def test_import_match_list_and_draft(server: ServerProcess, workdir: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        digest = push_image_to(
            client, REPO, "1.0", seed="vulns", headers=token(client, "pull,push")
        )
        describe(server.data_dir, digest)

        # A bad document: refused, named, nothing stored.
        bad = write_feed(workdir / "bad", FEED[:1])
        (bad / "Debian" / "DSA-9999-1.json").write_text(
            json.dumps({"id": "DSA-9999-1", "modified": "yesterday"})
        )
        refused = run("vulns", "import", str(bad), "--data-dir", str(server.data_dir))
        assert refused.exit_code == 1
        assert "Debian/DSA-9999-1.json: modified must be an RFC 3339" in refused.output
        assert listed(server, f"{REPO}@{digest}")["vulnerabilities"] == []

        feed = write_feed(workdir / "feed", FEED)
        out = ok(run("vulns", "import", str(feed), "--data-dir", str(server.data_dir)))
        assert (
            "6 documents: 6 added, 0 updated, 0 unchanged; "
            "images queued for matching: 1" in out
        )
        answer = wait_for(
            server,
            f"{REPO}:1.0",
            {"DSA-0001-1", "ALPINE-0001", "PYSEC-0001", "GHSA-0001", "GO-0001"},
        )
        assert answer["digest"] == digest
        assert answer["described"] is True
        assert answer["counts"] == {
            "critical": 1, "high": 0, "medium": 1, "low": 0, "unknown": 3,
        }  # fmt: skip
        fixes = {v["id"]: (v["package"], v["fixed"]) for v in answer["vulnerabilities"]}
        assert fixes == {
            "DSA-0001-1": ("libc6", "2.36-9+deb12u4"),
            "ALPINE-0001": ("busybox", "1.36.1-r2"),
            "PYSEC-0001": ("Requests", "2.31.0"),
            "GHSA-0001": ("lodash", "4.17.21"),
            "GO-0001": ("golang.org/x/net", None),
        }
        assert answer["vulnerabilities"][0]["id"] == "DSA-0001-1"  # worst first
        table = ok(run("vulns", "list", f"{REPO}@{digest}", *remote(server),
                       CARGOHOLD_PASSWORD=ROOT_PASSWORD))  # fmt: skip
        assert "1 critical, 1 medium, 3 unknown" in table
        assert "2.36-9+deb12u4" in table

        # Somebody pulls the image; then a new advisory for it arrives (a re-import
        # with one document updated and one new): a draft advisory, not published.
        pull = client.get(
            f"/v2/{REPO}/manifests/1.0",
            headers=token(client, "pull")
            | {"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert pull.status_code == 200
        wait_pulls(server, digest)
        newer = [
            osv("PYSEC-0002", "PyPI", "six",
                [{"introduced": "0"}, {"fixed": "1.17.0"}],
                modified="2026-02-01T00:00:00Z"),
        ]  # fmt: skip
        out = ok(run("vulns", "import", str(write_feed(feed, newer)),
                     "--data-dir", str(server.data_dir)))  # fmt: skip
        assert "6 documents: 0 added, 1 updated, 5 unchanged" in out
        wait_for(
            server,
            f"{REPO}@{digest}",
            {"DSA-0001-1", "ALPINE-0001", "PYSEC-0001", "GHSA-0001", "GO-0001",
             "PYSEC-0002"},
        )  # fmt: skip
        shown = json.loads(ok(run(
            "advisories", "show", draft_id("PYSEC-0002", REPO), "--json",
            *remote(server), CARGOHOLD_PASSWORD=ROOT_PASSWORD,
        )))  # fmt: skip
        assert shown["state"] == "draft"
        assert [d["digest"] for d in shown["digests"]] == [digest]
        # A draft sends no Warning.
        again = client.get(f"/v2/{REPO}/manifests/1.0", headers=token(client, "pull"))
        assert again.headers.get_list("Warning") == []

        # The view is private like the image: anonymous callers get nothing.
        anonymous = client.get(
            f"/api/v1/repositories/{REPO}/manifests/{digest}/vulnerabilities"
        )
        assert anonymous.status_code in {401, 404}
        malformed = client.get(
            f"/api/v1/repositories/{REPO}/manifests/sha256:nothex/vulnerabilities",
            auth=ROOT,
        )
        assert malformed.status_code == 400


def wait_pulls(server: ServerProcess, digest: str) -> None:
    """Until the pull is in ``pull_daily`` (flushed every second), bounded."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        with sqlite3.connect(server.data_dir / "cargohold.db", timeout=30) as db:
            found = db.execute(
                "SELECT count(*) FROM pull_daily WHERE digest = ?", (digest,)
            ).fetchone()[0]
        db.close()
        if found:
            return
        assert time.monotonic() < deadline, "the pull was never recorded"
        time.sleep(0.2)
