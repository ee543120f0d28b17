"""The checks behind each status component, built from the running configuration.

Each is cheap (one request, one query, one small write) and bounded: the runner in
``registry/status`` gives it ``CHECK_TIMEOUT`` seconds. The registry API and the
token service are probed over HTTP on the address this process's server listens on,
so a check sees what a client sees.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from cargohold.metadata.status import DEGRADED, MAJOR, OPERATIONAL, PARTIAL
from cargohold.registry.status import (
    CHECK_TIMEOUT,
    SLOW_SECONDS,
    Check,
    CheckFn,
    Component,
    Outcome,
)

if TYPE_CHECKING:
    from cargohold.auth.tokens import TokenVerifier
    from cargohold.metadata.instruments import InstrumentStore
    from cargohold.metadata.status import StatusStore
    from cargohold.settings import Settings
    from cargohold.storage.base import BlobStore

# The signing queue: a pending sign job older than this is degraded, then an outage.
SIGN_SLOW_SECONDS = 600.0
SIGN_STALLED_SECONDS = 3600.0
# Dead deliveries counted over this window make notifications a partial outage.
DEAD_WINDOW_SECONDS = 3600.0
_OK_BASE = (200, 401)  # GET /v2/ answers 401 to anonymous callers on a token registry


Probe = Callable[["CheckContext"], Awaitable[Outcome]]


def _slow(started: float, detail: str) -> Outcome:
    took = time.perf_counter() - started
    if took > SLOW_SECONDS:
        return Outcome(DEGRADED, f"{detail}; slow ({took:.1f} s)")
    return Outcome(OPERATIONAL, detail)


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What the checks read: built by the composition root."""

    settings: Settings
    http: httpx.AsyncClient  # for this registry's own address
    upstream_http: httpx.AsyncClient
    blob_store: BlobStore
    instruments: InstrumentStore
    status_store: StatusStore
    verifier: TokenVerifier

    @property
    def self_url(self) -> str:
        """Where this server listens, as a loopback URL when it binds every address."""
        server = self.settings.server
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(  # noqa: S104 - mapped to loopback
            server.host, server.host
        )
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if server.tls_cert is not None else "http"
        return f"{scheme}://{host}:{server.port}"


async def registry_api(ctx: CheckContext) -> Outcome:
    started = time.perf_counter()
    response = await ctx.http.get(f"{ctx.self_url}/v2/")
    if response.status_code in _OK_BASE:
        return _slow(started, f"GET /v2/ answered {response.status_code}")
    if response.status_code >= 500:  # noqa: PLR2004
        return Outcome(MAJOR, f"GET /v2/ answered {response.status_code}")
    return Outcome(PARTIAL, f"GET /v2/ answered {response.status_code}")


async def token_service(ctx: CheckContext) -> Outcome:
    started = time.perf_counter()
    service = ctx.settings.auth.service
    response = await ctx.http.get(f"{ctx.self_url}/token", params={"service": service})
    if response.status_code != 200:  # noqa: PLR2004
        return Outcome(MAJOR, f"GET /token answered {response.status_code}")
    token = response.json().get("token")
    if not isinstance(token, str):
        return Outcome(MAJOR, "GET /token answered without a token")
    ctx.verifier.verify(token)  # raises if the keys do not verify what they issue
    return _slow(started, "issued and verified an anonymous token")


async def blob_storage(ctx: CheckContext) -> Outcome:
    started = time.perf_counter()
    await ctx.blob_store.check()
    return _slow(started, "wrote, read and removed a probe")


async def metadata_database(ctx: CheckContext) -> Outcome:
    started = time.perf_counter()
    await ctx.instruments.ping()
    return _slow(started, "answered a query")


async def signing_queue(ctx: CheckContext) -> Outcome:
    signals = await ctx.status_store.queue_signals(since=time.time())
    if signals.oldest_sign_pending_at is None:
        return Outcome(OPERATIONAL, "no sign job waiting")
    age = time.time() - signals.oldest_sign_pending_at
    detail = f"{signals.sign_pending} sign jobs waiting, oldest {age:.0f} s"
    if age > SIGN_STALLED_SECONDS:
        return Outcome(PARTIAL, detail)
    if age > SIGN_SLOW_SECONDS:
        return Outcome(DEGRADED, detail)
    return Outcome(OPERATIONAL, detail)


async def notifications(ctx: CheckContext) -> Outcome:
    signals = await ctx.status_store.queue_signals(
        since=time.time() - DEAD_WINDOW_SECONDS
    )
    if signals.deliveries_dead:
        return Outcome(
            PARTIAL, f"{signals.deliveries_dead} deliveries given up in the last hour"
        )
    if signals.deliveries_failing:
        return Outcome(DEGRADED, f"{signals.deliveries_failing} deliveries retrying")
    if ctx.settings.smtp.host is None and signals.email_pending:
        return Outcome(
            DEGRADED, f"{signals.email_pending} emails wait: smtp.host is not set"
        )
    email = "email on" if ctx.settings.smtp.host is not None else "email off"
    return Outcome(OPERATIONAL, f"no failing deliveries ({email})")


def upstream(url: str) -> tuple[Component, Probe]:
    """An upstream registry's component and its probe (``GET <url>/v2/``)."""
    base = url.rstrip("/")
    host = urlsplit(base).netloc

    async def probe(ctx: CheckContext) -> Outcome:
        started = time.perf_counter()
        response = await ctx.upstream_http.get(f"{base}/v2/")
        if response.status_code in _OK_BASE:
            return _slow(started, f"GET /v2/ answered {response.status_code}")
        if response.status_code >= 500:  # noqa: PLR2004
            return Outcome(MAJOR, f"GET /v2/ answered {response.status_code}")
        return Outcome(PARTIAL, f"GET /v2/ answered {response.status_code}")

    component_id = "upstream-" + re.sub(r"[^a-z0-9.-]", "-", host.lower())
    return Component(component_id, f"Upstream {host}", f"{base}/v2/", 0), probe


_BUILTIN: tuple[tuple[str, str, str, Probe], ...] = (
    ("registry-api", "Registry API", "/v2/ answers pushes and pulls", registry_api),
    ("token-service", "Token service", "/token issues tokens", token_service),
    ("blob-storage", "Blob storage", "the blob store reads and writes", blob_storage),
    (
        "metadata-database",
        "Metadata database",
        "the database answers",
        metadata_database,
    ),
    ("signing-queue", "Signing queue", "sign jobs are picked up", signing_queue),
    ("notifications", "Notifications", "emails and webhooks go out", notifications),
)


def default_checks(ctx: CheckContext) -> list[Check]:
    """The components this configuration has, in page order, bound to ``ctx``."""
    settings = ctx.settings
    wanted: list[tuple[Component, Probe]] = []
    for component_id, name, description, probe in _BUILTIN:
        if component_id == "token-service" and settings.auth.mode != "token":
            continue
        if component_id == "signing-queue" and not settings.signing.enabled:
            continue
        wanted.append((Component(component_id, name, description, 0), probe))
    wanted.extend(upstream(url) for url in settings.status.upstreams)
    return [
        Check(replace(component, position=position), _bind(probe, ctx))
        for position, (component, probe) in enumerate(wanted, start=1)
    ]


def _bind(probe: Probe, ctx: CheckContext) -> CheckFn:
    async def run() -> Outcome:
        return await probe(ctx)

    return run


HTTP_TIMEOUT = httpx.Timeout(CHECK_TIMEOUT - 0.5)
