"""/metrics from a real ``cargohold serve --workers 2``: counts add up across workers.

Each request goes on a new connection, so the kernel (``SO_REUSEPORT``) spreads them
over both workers; a scrape answered by either worker must report the sum, and
numbers held by the database (``cargohold gc`` runs, upload sessions) too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.serverproc import ServerProcess, check_log, run_cli

REQUESTS = 40
SETTLE_SECONDS = 10.0
ADMIN = ("root", "root-password-123")
Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SETTINGS = {
    "CARGOHOLD_ADMIN_USER": ADMIN[0],
    "CARGOHOLD_ADMIN_PASSWORD": ADMIN[1],
    "CARGOHOLD_SERVER_WORKERS": "2",
    # No status rounds: their self-probes (GET /v2/, /token) would add to the counts.
    "CARGOHOLD_STATUS_ENABLED": "false",
}


def scrape(url: str) -> Values:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(values: Values, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in values.items() if n == name and wanted <= set(ls))


def settled(url: str, wanted: Callable[[Values], bool]) -> Values:
    """Scrape until ``wanted`` holds: each worker writes its counts every second."""
    deadline = time.monotonic() + SETTLE_SECONDS
    values = scrape(url)
    while not wanted(values) and time.monotonic() < deadline:
        time.sleep(0.2)
        values = scrape(url)
    return values


@pytest.fixture
def instrumented(
    workdir: Path, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    """Token auth with an administrator, two workers; no 5xx but readyz's own."""
    process = ServerProcess(workdir / "data", workdir / "server.log", settings=SETTINGS)
    try:
        process.start()
        yield process
    finally:
        process.stop()
    if request.node.name.startswith("test_counts"):
        check_log(process, request)


def test_counts_add_up_across_workers(instrumented: ServerProcess) -> None:
    url = instrumented.url

    # The start-up probe's GET /v2/ was counted already: count from there.
    def probes(values: Values) -> float:
        return total(
            values, "cargohold_http_requests_total", route="/v2/", status="401"
        )

    before = probes(settled(url, lambda v: probes(v) >= 1))
    assert before >= 1
    for _ in range(REQUESTS):
        with httpx.Client(base_url=url, timeout=10) as client:  # a new connection
            assert client.get("/v2/").status_code == 401  # a challenge, no failure
    for _ in range(3):
        with httpx.Client(base_url=url, timeout=10) as client:
            wrong = client.get("/token", auth=(ADMIN[0], "wrong-password"))
            assert wrong.status_code == 401
    token = ""
    for _ in range(4):
        with httpx.Client(base_url=url, timeout=10) as client:
            issued = client.get(
                "/token",
                params={"scope": "repository:metrics/test:push,pull"},
                auth=ADMIN,
            )
            assert issued.status_code == 200
            token = issued.json()["token"]
    with httpx.Client(base_url=url, timeout=10) as client:
        started = client.post(
            "/v2/metrics/test/blobs/uploads/",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert started.status_code == 202

    settled(
        url,
        lambda v: (
            total(v, "cargohold_http_requests_total", route="/v2/") == before + REQUESTS
            and total(v, "cargohold_http_requests_in_progress") == 1
        ),
    )
    # One directory for this server (host and port), one set of files per worker.
    (directory,) = (instrumented.data_dir / "run" / "metrics").iterdir()
    assert directory.name.endswith(f"-{instrumented.port}")
    pids = {path.stem.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}
    assert len(pids) == 2, f"both workers should have counted: {sorted(pids)}"

    for _ in range(4):  # whichever worker answers the scrape reports the same
        values = scrape(url)
        v2 = total(values, "cargohold_http_requests_total", route="/v2/", status="401")
        assert v2 == before + REQUESTS
        assert (
            total(values, "cargohold_http_request_duration_seconds_count", route="/v2/")
            == before + REQUESTS
        )
        assert total(values, "cargohold_tokens_issued_total") == 4
        assert total(values, "cargohold_auth_failures_total", route="/token") == 3
        assert total(values, "cargohold_auth_failures_total") == 3
        assert total(values, "cargohold_upload_sessions") == 1
        # This scrape; another worker's own scrape may show until its next flush.
        assert 1 <= total(values, "cargohold_http_requests_in_progress") <= 2
        assert total(values, "cargohold_gc_runs_total") == 0

    # `cargohold gc` runs in its own process and records its run in the database.
    done = run_cli("gc", data_dir=instrumented.data_dir)
    assert done.returncode == 0, done.stderr
    values = scrape(url)
    assert total(values, "cargohold_gc_runs_total") == 1
    assert total(values, "cargohold_gc_reclaimed_bytes_total") == 0
    assert total(values, "cargohold_gc_last_run_timestamp_seconds") > 0


def test_healthz_and_readyz_503_when_storage_unusable(
    instrumented: ServerProcess,
) -> None:
    url = instrumented.url
    health = httpx.get(f"{url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200

    storage = instrumented.data_dir / "storage"
    aside = instrumented.data_dir / "storage-aside"
    storage.rename(aside)
    storage.write_text("the volume went away")
    for _ in range(4):  # every worker sees it
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "storage": "failed"}
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200

    storage.unlink()
    aside.rename(storage)
    assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200


def test_json_access_log_carries_the_request_id(workdir: Path) -> None:
    settings = {"CARGOHOLD_AUTH_MODE": "none", "CARGOHOLD_LOG_FORMAT": "json"}
    process = ServerProcess(workdir / "data", workdir / "server.log", settings=settings)
    try:
        process.start()
        answer = httpx.get(
            f"{process.url}/v2/some/repo/manifests/latest",
            headers={"X-Request-Id": "trace-7f3a"},
            timeout=10,
        )
        assert answer.status_code == 404
        assert answer.headers["X-Request-Id"] == "trace-7f3a"
    finally:
        process.stop()
    lines = [
        json.loads(line)
        for line in process.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    (entry,) = [e for e in lines if e.get("request_id") == "trace-7f3a"]
    assert entry["event"] == "request"
    assert entry["route"] == "/v2/{name:path}/manifests/{reference}"
    assert entry["path"] == "/v2/some/repo/manifests/latest"
    assert entry["status"] == 404
    assert entry["bytes_out"] > 0
