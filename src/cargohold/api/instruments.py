"""The operator's instruments: ``/metrics``, ``/healthz``, ``/readyz``, request metrics.

Several server processes, one truth: ``cargohold serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at ``<data_dir>/run/metrics/<host>-<port>`` (emptied at
each start) before the workers start, so each worker's counters live in its own mmapped
files there and a scrape of any worker sums them all (prometheus-client's
multiprocess mode). Numbers the database holds (outbox depth, upload sessions, GC
runs recorded by ``cargohold gc``) are read at scrape time, so every process agrees.
Without the variable (tests, one in-process app) each app counts in its own registry.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
import uuid
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cargohold.api.state import services, settings
from cargohold.registry.clients import client_address, parse_networks

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from cargohold.metadata.instruments import StoreGauges

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
log = structlog.get_logger("cargohold.access")
_log = structlog.get_logger(__name__)

_API_VERSION = (b"docker-distribution-api-version", b"registry/2.0")
# containers/image reads signatures through /extensions/v2/ when the version check
# (/v2/, answered 200 or 401) says so (api/v2/signatures.py).
_SIGNATURES = (b"x-registry-supports-signatures", b"1")
# A caller's X-Request-Id is kept when it is this tame; else a new one is made.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_UNMATCHED = "unmatched"
_V2 = ("/v2/", "/v2")
# Seconds; registry requests span a cached manifest GET to a multi-GiB blob.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class _Children:
    requests: Counter
    latency: Histogram
    bytes_in: Counter
    bytes_out: Counter


@dataclass(slots=True)
class _Tally:
    """Requests of one (method, route, status) since the last flush."""

    count: int = 0
    seconds: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    # One count per histogram bucket, the last one +Inf.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(_BUCKETS) + 1))


class RequestMetrics:
    """The counters request handling updates, in ``registry`` (or the multiprocess
    files when ``PROMETHEUS_MULTIPROC_DIR`` is set)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._children: dict[tuple[str, str, int], _Children] = {}
        self._pending: dict[tuple[str, str, int], _Tally] = {}
        # Requests (and upload requests) being answered by this process now.
        self.in_flight = 0
        self.uploads_in_flight = 0
        self.requests = Counter(
            "cargohold_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "cargohold_http_request_duration_seconds",
            "Time to answer an HTTP request (to its last body byte), by route.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.bytes_in = Counter(
            "cargohold_http_request_body_bytes",
            "Request body bytes received, by route template.",
            ["route"],
            registry=registry,
        )
        self.bytes_out = Counter(
            "cargohold_http_response_body_bytes",
            "Response body bytes sent, by route template.",
            ["route"],
            registry=registry,
        )
        self.in_progress = Gauge(
            "cargohold_http_requests_in_progress",
            "HTTP requests being answered now (all processes).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.uploads_in_progress = Gauge(
            "cargohold_upload_requests_in_progress",
            "Blob upload requests (PATCH or PUT with bytes) being received now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.tokens_issued = Counter(
            "cargohold_tokens_issued",
            "Bearer tokens issued by /token, by method (GET: docker, POST: OAuth2).",
            ["method"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "cargohold_auth_failures",
            "Requests refused 401 although they carried credentials, or any 401 from "
            "/token: wrong passwords, bad or expired tokens.",
            ["route"],
            registry=registry,
        )

    def observe(
        self,
        *,
        method: str,
        route: str,
        status: int,
        seconds: float,
        bytes_in: int,
        bytes_out: int,
        had_credentials: bool,
    ) -> None:
        # A multiprocess value costs ~5 us to update (a locked mmap write), a dozen
        # per request: requests are tallied here and written by ``flush`` (every
        # second, and before a scrape), an int addition each.
        key = (method, route, status)
        tally = self._pending.get(key)
        if tally is None:
            tally = self._pending[key] = _Tally()
        tally.count += 1
        tally.seconds += seconds
        tally.bytes_in += bytes_in
        tally.bytes_out += bytes_out
        # Bucket i counts observations <= its bound (prometheus_client's rule).
        tally.buckets[bisect_left(_BUCKETS, seconds)] += 1
        if route == "/token":
            if status == 200:  # noqa: PLR2004
                self.tokens_issued.labels(method).inc()
            elif status == 401:  # noqa: PLR2004
                self.auth_failures.labels(route).inc()
        elif status == 401 and had_credentials:  # noqa: PLR2004
            self.auth_failures.labels(route).inc()

    def flush(self) -> None:
        """Write the tallies since the last flush into the metrics."""
        pending, self._pending = self._pending, {}
        for (method, route, status), tally in pending.items():
            children = self._children.get((method, route, status))
            if children is None:
                children = self._children[method, route, status] = _Children(
                    self.requests.labels(method, route, str(status)),
                    self.latency.labels(method, route),
                    self.bytes_in.labels(route),
                    self.bytes_out.labels(route),
                )
            children.requests.inc(tally.count)
            # Histogram has no public "add n observations": its child's bucket and
            # sum values are written as observe() would (prometheus-client 0.26).
            latency = children.latency
            latency._sum.inc(tally.seconds)  # noqa: SLF001
            for bucket, count in enumerate(tally.buckets):
                if count:
                    latency._buckets[bucket].inc(count)  # noqa: SLF001
            if tally.bytes_in:
                children.bytes_in.inc(tally.bytes_in)
            if tally.bytes_out:
                children.bytes_out.inc(tally.bytes_out)
        self.in_progress.set(self.in_flight)
        self.uploads_in_progress.set(self.uploads_in_flight)


class _StoreCollector:
    """One scrape's database-held numbers as metric families."""

    def __init__(self, gauges: StoreGauges) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "cargohold_outbox_messages",
            "Outbox messages (background jobs) by channel and state "
            "(pending, done, dead).",
            labels=["channel", "state"],
        )
        for channel, state, count in self._gauges.outbox:
            outbox.add_metric([channel, state], count)
        yield outbox
        yield GaugeMetricFamily(
            "cargohold_upload_sessions",
            "Blob upload sessions open (started, not yet finished or expired).",
            value=self._gauges.upload_sessions,
        )
        gc = self._gauges.gc
        yield CounterMetricFamily(
            "cargohold_gc_runs", "Finished `cargohold gc` runs.", value=gc.runs
        )
        yield CounterMetricFamily(
            "cargohold_gc_reclaimed_bytes",
            "Bytes of blobs deleted by `cargohold gc`.",
            value=gc.bytes_freed,
        )
        yield CounterMetricFamily(
            "cargohold_gc_deleted_blobs",
            "Blobs deleted by `cargohold gc`.",
            value=gc.blobs_deleted,
        )
        if gc.last_finished_at is not None:
            yield GaugeMetricFamily(
                "cargohold_gc_last_run_timestamp_seconds",
                "When the last `cargohold gc` finished (Unix time).",
                value=gc.last_finished_at,
            )


class Instrumented:
    """Pure ASGI middleware: ``Docker-Distribution-API-Version``, the request id
    (``X-Request-Id``: the caller's when tame, else a new one; always returned), the
    access log if asked, request metrics if ``metrics`` is given, and
    ``X-Cargohold-Replica`` naming the process that answered if ``replica`` is."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: bool,
        metrics: RequestMetrics | None,
        replica: str | None = None,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics
        self.headers: tuple[tuple[bytes, bytes], ...] = (
            (_API_VERSION, (b"x-cargohold-replica", replica.encode("ascii", "replace")))
            if replica
            else (_API_VERSION,)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        exchange = _Exchange(
            receive,
            send,
            _request_id(scope),
            self.headers,
            version_check=scope["path"] in _V2,
        )
        metrics = self.metrics
        upload = (
            metrics is not None
            and scope["method"] in ("PATCH", "PUT")
            and "/blobs/uploads/" in scope["path"]
        )
        if metrics is not None:
            metrics.in_flight += 1
            if upload:
                metrics.uploads_in_flight += 1
        try:
            await self.app(
                scope, exchange.receive if metrics else receive, exchange.send
            )
        finally:
            elapsed = time.perf_counter() - started
            template = getattr(scope.get("route"), "path", _UNMATCHED)
            if metrics is not None:
                metrics.in_flight -= 1
                if upload:
                    metrics.uploads_in_flight -= 1
                metrics.observe(
                    method=scope["method"],
                    route=template,
                    status=exchange.status,
                    seconds=elapsed,
                    bytes_in=exchange.bytes_in,
                    bytes_out=exchange.bytes_out,
                    had_credentials=_has_credentials(scope),
                )
            if self.access_log:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    route=template,
                    status=exchange.status,
                    ms=round(elapsed * 1000, 2),
                    bytes_in=exchange.bytes_in,
                    bytes_out=exchange.bytes_out,
                    request_id=exchange.request_id,
                    client=(scope.get("client") or ("",))[0],
                )


class _Exchange:
    """One request's ``receive`` and ``send``, counting bytes and adding headers."""

    __slots__ = (
        "_headers",
        "_length",
        "_receive",
        "_send",
        "bytes_in",
        "bytes_out",
        "request_id",
        "status",
        "version_check",
    )

    def __init__(
        self,
        receive: Receive,
        send: Send,
        request_id: str,
        headers: tuple[tuple[bytes, bytes], ...],
        *,
        version_check: bool,
    ) -> None:
        self._headers = headers
        self._receive = receive
        self._send = send
        self.request_id = request_id
        self.version_check = version_check
        self.status = 0
        self.bytes_in = self.bytes_out = self._length = 0

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.bytes_in += len(message.get("body", b""))
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers", ())
            for name, value in headers:
                if name.lower() == b"content-length" and value.isdigit():
                    self._length = int(value)
            message["headers"] = [
                *headers,
                *self._headers,
                (b"x-request-id", self.request_id.encode()),
                *((_SIGNATURES,) if self.version_check else ()),
            ]
        elif kind == "http.response.body":
            self.bytes_out += len(message.get("body", b""))
        elif kind == "http.response.pathsend":
            self.bytes_out += self._length  # the file, sent by the server itself
        await self._send(message)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex[:16]


def _has_credentials(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _ in scope["headers"])


def scrape_registry(
    metrics: RequestMetrics | None, gauges: StoreGauges | None
) -> CollectorRegistry:
    """What one scrape reports: every process's counters, and the database's."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        _forget_dead_workers(Path(directory))
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    elif metrics is not None:
        registry = metrics.registry
    else:
        registry = CollectorRegistry()
    if gauges is None:
        return registry
    combined = CollectorRegistry(auto_describe=False)
    combined.register(_Forward(registry))
    combined.register(_StoreCollector(gauges))
    return combined


def _forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges of workers that died (granian respawns them): their
    counters stay, their "in progress" would otherwise stay forever."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Forward:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


def _metrics_client(request: Request) -> str:
    config = settings(request)
    peer = request.scope.get("client")
    return client_address(
        str(peer[0]) if peer else "",
        ",".join(request.headers.getlist("x-forwarded-for")) or None,
        parse_networks(config.server.trusted_proxies),
    )


async def metrics_endpoint(request: Request) -> Response:
    config = settings(request)
    if not config.metrics.enabled:
        return JSONResponse({"error": "metrics are disabled (metrics.enabled)"}, 404)
    if not _allowed(_metrics_client(request), config.metrics.allow):
        return JSONResponse(
            {"error": "metrics are served only to addresses in metrics.allow"}, 403
        )
    instruments = services(request).instruments
    gauges = await instruments.gauges() if instruments is not None else None
    metrics: RequestMetrics | None = request.app.state.request_metrics
    if metrics is not None:
        metrics.flush()  # this process's latest; the others flush every second
    # The multiprocess collector reads every worker's files: off the event loop.
    body = await anyio.to_thread.run_sync(
        lambda: generate_latest(scrape_registry(metrics, gauges))
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _allowed(client: str, allow: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in parse_networks(allow))


async def healthz(request: Request) -> Response:  # noqa: ARG001 - the process answers
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    svc = services(request)
    checks: dict[str, str] = {}
    failed = False
    try:
        if svc.instruments is not None:
            await svc.instruments.ping()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        failed = True
        checks["database"] = "failed"
        _log.warning("readyz: database check failed", error=repr(exc))
    try:
        await svc.store.check()
        checks["storage"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        failed = True
        checks["storage"] = "failed"
        _log.warning("readyz: storage check failed", error=repr(exc))
    return JSONResponse(
        {"status": "unavailable" if failed else "ok", "checks": checks},
        status_code=503 if failed else 200,
        headers={"Cache-Control": "no-store"},
    )


routes = [
    Route("/metrics", metrics_endpoint, methods=["GET"], name="metrics"),
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
    Route("/readyz", readyz, methods=["GET"], name="readyz"),
]
