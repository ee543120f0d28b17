"""Advisories against a real ``cargohold serve --workers 2``, driven by the CLI.

The Warning header must reach every worker within ``advisories.warning_refresh_seconds``
of a change made through any process: publishing, a tag moving under a glob, resolving.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.integration.helpers import push_image_to
from tests.integration.serverproc import ServerProcess, check_log
from tests.integration.test_cli_admin import ROOT_PASSWORD, ok, remote, run

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REPO = "acme/app"
ROOT = ("root", ROOT_PASSWORD)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Bound on how long a change may take to show in every worker (the window is 1 s).
SETTLE_SECONDS = 20.0


@pytest.fixture
def server(workdir: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    process = ServerProcess(workdir / "data", workdir / "server.log", settings={
        "CARGOHOLD_AUTH_MODE": "token",
        "CARGOHOLD_ADMIN_USER": "root",
        "CARGOHOLD_ADMIN_PASSWORD": ROOT_PASSWORD,
        "CARGOHOLD_SERVER_WORKERS": "2",
        "CARGOHOLD_ADVISORIES_WARNING_REFRESH_SECONDS": "1",
    })  # fmt: skip
    process.start()
    try:
        yield process
    finally:
        process.stop()
    check_log(process, request)


def authorized(client: httpx.Client, actions: str) -> dict[str, str]:
    response = client.get(
        "/token",
        params={"service": "cargohold", "scope": f"repository:{REPO}:{actions}"},
        auth=ROOT,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def push(client: httpx.Client, tag: str, seed: str) -> str:
    return push_image_to(
        client, REPO, tag, seed=seed, headers=authorized(client, "pull,push")
    )


def settles(client: httpx.Client, reference: str, expected: list[str]) -> bool:
    """Whether GET and HEAD of ``reference`` answer with ``expected`` warnings 20 times
    in a row (both workers answer, in turn), within ``SETTLE_SECONDS``."""
    headers = authorized(client, "pull")
    deadline = time.monotonic() + SETTLE_SECONDS
    streak = 0
    while time.monotonic() < deadline and streak < 20:
        method = "GET" if streak % 2 else "HEAD"
        response = client.request(
            method, f"/v2/{REPO}/manifests/{reference}", headers=headers
        )
        assert response.status_code == 200, response.text
        seen = response.headers.get_list("Warning")
        streak = streak + 1 if seen == expected else 0
        if not streak:
            time.sleep(0.05)  # a change is on its way: poll, bounded by the deadline
    return streak >= 20


def test_warnings_reach_every_worker(server: ServerProcess, tmp_path: Path) -> None:
    at = remote(server)
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        old = push(client, "1.0", "one")
        fixed = push(client, "2.0", "two")
        ok(run("orgs", "add", "acme", *at, CARGOHOLD_PASSWORD=ROOT_PASSWORD))
        document = tmp_path / "advisory.toml"
        document.write_text(
            'id = "CH-9"\ntitle = "libfoo"\nseverity = "critical"\n'
            'state = "current"\nfixed_in = "2.0"\n'
            '[[affected]]\nrepository = "acme/app"\ntags = ["1.*"]\n'
        )
        added = ok(
            run(
                "advisories",
                "add",
                str(document),
                *at,
                CARGOHOLD_PASSWORD=ROOT_PASSWORD,
            )
        )
        assert "CH-9" in added
        warning = '299 - "CH-9: libfoo; fixed in 2.0"'
        assert settles(client, "1.0", [warning])
        assert settles(client, old, [warning])
        assert settles(client, "2.0", [])
        # A tag the glob matches moves: its new target warns too, in every worker.
        moved = push(client, "1.0", "three")
        assert settles(client, moved, [warning])
        assert settles(client, fixed, [])
        shown = json.loads(
            ok(run("advisories", "show", "CH-9", "--json", *at,
                   CARGOHOLD_PASSWORD=ROOT_PASSWORD))
        )  # fmt: skip
        assert {(d["digest"], d["via_tag"]) for d in shown["digests"]} == {
            (old, "1.0"),
            (moved, "1.0"),
        }
        ok(
            run("advisories", "update", "CH-9", "--state", "resolved", *at,
                CARGOHOLD_PASSWORD=ROOT_PASSWORD)
        )  # fmt: skip
        assert settles(client, "1.0", [])
        assert settles(client, old, [])
        revisions = ok(
            run("advisories", "show", "CH-9", "--revisions", *at,
                CARGOHOLD_PASSWORD=ROOT_PASSWORD)
        )  # fmt: skip
        assert "user:root" in revisions
        listed = ok(run("advisories", "list", *at, CARGOHOLD_PASSWORD=ROOT_PASSWORD))
        assert "resolved" in listed
        history = ok(
            run("tags", "history", f"{REPO}:1.0", "--json", *at,
                CARGOHOLD_PASSWORD=ROOT_PASSWORD)
        )  # fmt: skip
        moves = json.loads(history)["history"]
        assert [(m["from"], m["to"], m["actor"]) for m in moves] == [
            (old, moved, "user:root"),
            (None, old, "user:root"),
        ]
