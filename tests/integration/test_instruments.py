"""/metrics, /healthz, /readyz and the request id, in-process (one app)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apptypes import MakeClient

MANIFEST_ROUTE = "/v2/{name:path}/manifests/{reference}"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_requests_are_counted_by_route_template(make_client: MakeClient) -> None:
    client = await make_client()
    for name in ("alpha/one", "beta/two", "gamma/three"):
        response = await client.get(f"/v2/{name}/manifests/latest")
        assert response.status_code == 404
    scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    values = samples(scrape.text)
    key = (
        "cargohold_http_requests_total",
        (("method", "GET"), ("route", MANIFEST_ROUTE), ("status", "404")),
    )
    assert values[key] == 3
    count = (
        "cargohold_http_request_duration_seconds_count",
        (("method", "GET"), ("route", MANIFEST_ROUTE)),
    )
    assert values[count] == 3
    out = ("cargohold_http_response_body_bytes_total", (("route", MANIFEST_ROUTE),))
    assert values[out] > 0
    # Bounded label cardinality: no repository name reaches a label.
    assert "alpha" not in scrape.text
    assert "beta/two" not in scrape.text


async def test_unmatched_paths_share_one_label(make_client: MakeClient) -> None:
    client = await make_client()
    for path in ("/nothing", "/nothing/else", "/wp-admin.php"):
        assert (await client.get(path)).status_code == 404
    values = samples((await client.get("/metrics")).text)
    key = (
        "cargohold_http_requests_total",
        (("method", "GET"), ("route", "unmatched"), ("status", "404")),
    )
    assert values[key] == 3
    assert "wp-admin" not in (await client.get("/metrics")).text


async def test_request_bytes_in_are_counted(make_client: MakeClient) -> None:
    client = await make_client()
    started = await client.post("/v2/some/repo/blobs/uploads/")
    assert started.status_code == 202
    body = b"x" * 1000
    patched = await client.patch(
        started.headers["Location"],
        content=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert patched.status_code == 202
    values = samples((await client.get("/metrics")).text)
    route = "/v2/{name:path}/blobs/uploads/{upload}"
    received = ("cargohold_http_request_body_bytes_total", (("route", route),))
    assert values[received] == 1000
    # The session is open until finished: read from the database at scrape time.
    assert values[("cargohold_upload_sessions", ())] == 1
    assert values[("cargohold_upload_requests_in_progress", ())] == 0


async def test_metrics_only_for_allowed_addresses(make_client: MakeClient) -> None:
    # The in-process client calls from 127.0.0.1.
    client = await make_client(metrics={"allow": ["10.0.0.0/8"]})
    refused = await client.get("/metrics")
    assert refused.status_code == 403
    assert "metrics.allow" in refused.json()["error"]


async def test_forwarded_address_counts_only_from_trusted_proxies(
    make_client: MakeClient,
) -> None:
    client = await make_client(
        metrics={"allow": ["192.0.2.0/24"]},
        server={"trusted_proxies": ["127.0.0.1/32"]},
    )
    allowed = await client.get("/metrics", headers={"X-Forwarded-For": "192.0.2.7"})
    assert allowed.status_code == 200
    refused = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert refused.status_code == 403
    # A loopback proxy forwarding a stranger: the stranger is who asks.
    local = await make_client(server={"trusted_proxies": ["127.0.0.1/32"]})
    stranger = await local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert stranger.status_code == 403


async def test_metrics_disabled(make_client: MakeClient) -> None:
    client = await make_client(metrics={"enabled": False})
    assert (await client.get("/metrics")).status_code == 404
    assert (await client.get("/v2/")).status_code == 200


async def test_healthz_and_readyz(make_client: MakeClient) -> None:
    client = await make_client()
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "ok", "storage": "ok"},
    }


@pytest.mark.filesystem_only
@pytest.mark.allow_5xx
async def test_readyz_503_when_storage_is_unusable(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client()  # data_dir: tmp_path / "data" (settings_factory)
    storage = tmp_path / "data" / "storage"
    shutil.rmtree(storage)
    storage.write_text("not a directory")
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "storage": "failed"},
    }
    assert (await client.get("/healthz")).status_code == 200


async def test_request_id_is_honoured_or_generated(make_client: MakeClient) -> None:
    client = await make_client()
    mine = await client.get("/healthz", headers={"X-Request-Id": "trace-42.a:b"})
    assert mine.headers["x-request-id"] == "trace-42.a:b"
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 16
    hostile = await client.get("/healthz", headers={"X-Request-Id": "a b\tc" * 10})
    assert hostile.headers["x-request-id"] != "a b\tc" * 10
    assert len(hostile.headers["x-request-id"]) == 16
