"""``api/instruments.py`` without a server: tallies, flushes, dead workers' gauges."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cargohold.api.instruments import RequestMetrics, _forget_dead_workers

if TYPE_CHECKING:
    from pathlib import Path

ROUTE = "/v2/{name:path}/blobs/{digest}"
DEAD = 2**22 + 12345  # above Linux's default pid_max (4194304): never a live process


def _values(
    registry: CollectorRegistry,
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_tallies_appear_after_a_flush_with_histogram_buckets() -> None:
    metrics = RequestMetrics(CollectorRegistry())
    for seconds in (0.0005, 0.001, 0.02, 45.0):  # 0.001 is in the 0.001 bucket
        metrics.observe(
            method="GET",
            route=ROUTE,
            status=200,
            seconds=seconds,
            bytes_in=0,
            bytes_out=100,
            had_credentials=False,
        )
    labels = frozenset({("method", "GET"), ("route", ROUTE), ("status", "200")})
    assert ("cargohold_http_requests_total", labels) not in _values(metrics.registry)
    metrics.flush()
    values = _values(metrics.registry)
    assert values["cargohold_http_requests_total", labels] == 4
    route = {("method", "GET"), ("route", ROUTE)}

    def bucket(le: str) -> float:
        name = "cargohold_http_request_duration_seconds_bucket"
        return values[name, frozenset({*route, ("le", le)})]

    assert bucket("0.001") == 2
    assert bucket("0.025") == 3
    assert bucket("30.0") == 3
    assert bucket("+Inf") == 4
    total = values["cargohold_http_request_duration_seconds_sum", frozenset(route)]
    assert abs(total - 45.0215) < 1e-9
    out = values[
        "cargohold_http_response_body_bytes_total", frozenset({("route", ROUTE)})
    ]
    assert out == 400
    metrics.flush()  # nothing new: nothing added twice
    assert _values(metrics.registry)["cargohold_http_requests_total", labels] == 4


def test_tokens_and_auth_failures() -> None:
    metrics = RequestMetrics(CollectorRegistry())
    cases = [
        ("GET", "/token", 200, False),
        ("POST", "/token", 200, False),
        ("GET", "/token", 401, True),
        ("GET", "/v2/", 401, False),  # a challenge: no credentials offered
        ("GET", "/v2/", 401, True),  # a bad token
        ("GET", "/v2/", 200, True),
    ]
    for method, route, status, credentials in cases:
        metrics.observe(
            method=method,
            route=route,
            status=status,
            seconds=0.001,
            bytes_in=0,
            bytes_out=0,
            had_credentials=credentials,
        )
    values = _values(metrics.registry)
    tokens = "cargohold_tokens_issued_total"
    assert values[tokens, frozenset({("method", "GET")})] == 1
    assert values[tokens, frozenset({("method", "POST")})] == 1
    failures = "cargohold_auth_failures_total"
    assert values[failures, frozenset({("route", "/token")})] == 1
    assert values[failures, frozenset({("route", "/v2/")})] == 1


def test_dead_workers_live_gauges_are_dropped(tmp_path: Path) -> None:
    mine = os.getpid()
    for name in (
        f"gauge_livesum_{DEAD}.db",
        f"gauge_livesum_{mine}.db",
        f"counter_{DEAD}.db",
        f"histogram_{DEAD}.db",
    ):
        (tmp_path / name).write_bytes(b"")
    _forget_dead_workers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"gauge_livesum_{mine}.db", f"counter_{DEAD}.db", f"histogram_{DEAD}.db"]
    )
