"""The status page on a real ``cargohold serve --workers 2``.

Check rounds are written by one process at a time (the ``status.checks`` lease): each
round's rows come from one worker, rounds are at least the interval apart, and after
``kill -9`` of the worker that wrote the last round, rounds go on (the other worker, or
the one granian starts instead, takes the lease). Incidents opened through the CLI
against the running server show in the page, the JSON and the feed; anonymous callers
read those and cannot manage.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import time
from collections import defaultdict
from typing import TYPE_CHECKING

import feedparser  # type: ignore[import-untyped]
import httpx
import pytest

from tests.integration import statuspage
from tests.integration.serverproc import ServerProcess, check_log, free_port
from tests.integration.test_cli_admin import ROOT_PASSWORD, as_root, ok

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

# Bounds on waits (never expected to be reached): rounds come every second, and a
# lease a dead worker held runs out after 30 s.
ROUNDS_SECONDS = 30.0
HANDOVER_SECONDS = 60.0
DEAD_UPSTREAM = f"http://127.0.0.1:{free_port()}"  # nothing listens there


Rounds = list[tuple[float, set[str], dict[str, str]]]


@pytest.fixture
def server(workdir: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    process = ServerProcess(workdir / "data", workdir / "server.log")
    process.settings = {
        "CARGOHOLD_AUTH_MODE": "token",
        "CARGOHOLD_ADMIN_USER": "root",
        "CARGOHOLD_ADMIN_PASSWORD": ROOT_PASSWORD,
        "CARGOHOLD_SERVER_WORKERS": "2",
        "CARGOHOLD_STATUS_INTERVAL_SECONDS": "1",
    }
    try:
        yield process
    finally:
        process.stop()
    check_log(process, request)


def rounds(server: ServerProcess) -> Rounds:
    """Each stored round: when, who wrote it, each component's status."""
    path = server.data_dir / "cargohold.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute(
            "SELECT checked_at, checked_by, component, status FROM status_checks"
        ).fetchall()
    by_round: dict[float, tuple[set[str], dict[str, str]]] = defaultdict(
        lambda: (set(), {})
    )
    for at, by, component, status in rows:
        by_round[at][0].add(by)
        by_round[at][1][component] = status
    return [(at, *by_round[at]) for at in sorted(by_round)]


def wait_for(
    server: ServerProcess, done: Callable[[Rounds], bool], bound: float
) -> Rounds:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        found = rounds(server)
        if done(found):
            return found
        time.sleep(0.2)
    pytest.fail(f"no such rounds within {bound:.0f} s:\n{server.log_tail()}")


def test_one_writer_per_round_and_checks_survive_kill_9(server: ServerProcess) -> None:
    # The server itself stands in for a live upstream registry.
    server.settings["CARGOHOLD_STATUS_UPSTREAMS"] = f"{server.url},{DEAD_UPSTREAM}"
    server.start()
    found = wait_for(server, lambda r: len(r) >= 3, ROUNDS_SECONDS)
    upstream = "upstream-127.0.0.1-" + DEAD_UPSTREAM.rsplit(":", 1)[1]
    live = "upstream-127.0.0.1-" + str(server.port)
    for _, writers, statuses in found:
        assert len(writers) == 1  # one process wrote the whole round
        assert statuses == {
            "registry-api": "operational",
            "token-service": "operational",
            "blob-storage": "operational",
            "metadata-database": "operational",
            "notifications": "operational",
            live: "operational",
            upstream: "major_outage",
        }
    starts = [at for at, _, _ in found]
    # Two workers tick every second: only the lease keeps their rounds apart.
    assert len(server.workers) >= 2
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(starts))

    (writer,) = found[-1][1]
    pid = int(writer.split(":")[1])
    assert pid in server.workers
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    after = wait_for(
        server,
        lambda r: any(at > killed_at for at, _, _ in r),
        HANDOVER_SECONDS,
    )
    later = [writers for at, writers, _ in after if at > killed_at]
    assert all(len(writers) == 1 and writer not in writers for writers in later)


def test_incidents_from_the_cli_show_to_anonymous_readers(
    server: ServerProcess,
) -> None:
    server.start()
    wait_for(server, lambda r: len(r) >= 1, ROUNDS_SECONDS)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        before = client.get("/api/v2/status.json").json()
        assert before["status"] == {
            "indicator": "none",
            "description": "All Systems Operational",
        }
    opened = ok(
        as_root(
            "status", "incident", "create", "Token service errors",
            "-m", "Some logins fail.", "--impact", "critical",
            "--component", "token-service", server=server,
        )
    )  # fmt: skip
    incident_id = opened.split()[-1]
    ok(
        as_root(
            "status", "incident", "update", incident_id, "--status", "identified",
            "-m", "A bad key rotation.", server=server,
        )
    )  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as client:
        # Any worker answers alike: the page reads the database.
        for _ in range(4):
            summary = client.get("/api/v2/summary.json").json()
            statuspage.check("summary.json", summary)
            assert summary["status"]["indicator"] == "critical"
            (incident,) = summary["incidents"]
            assert incident["status"] == "identified"
            token = next(c for c in summary["components"] if c["id"] == "token-service")
            assert token["status"] == "major_outage"
        page = client.get("/status")
        assert page.status_code == 200
        assert "A bad key rotation." in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        feed = feedparser.parse(client.get("/status/history.atom").content)
        assert not feed.bozo
        assert feed.entries[0].title == "Token service errors"
        listed = client.get("/api/v1/status/incidents")
        assert listed.status_code == 401
        created = client.post(
            "/api/v1/status/incidents", json={"name": "x", "body": "y"}
        )
        assert created.status_code == 401
    ok(as_root("status", "incident", "resolve", incident_id, "-m", "Fixed.",
               server=server))  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as client:
        status = client.get("/api/v2/status.json").json()
        statuspage.check("status.json", status)
        assert status["status"]["indicator"] == "none"
        unresolved = client.get("/api/v2/incidents/unresolved.json").json()
        assert unresolved["incidents"] == []
