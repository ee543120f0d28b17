"""The composition root: settings in, a Starlette app with its services out.

This is the one place (with ``cli``) that picks concrete backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import structlog
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from cargohold import settings as settings_module
from cargohold.api import errors, instruments
from cargohold.api.management import routes as management_routes
from cargohold.api.token import routes as token_routes
from cargohold.api.v2.routes import routes
from cargohold.api.wellknown import routes as wellknown_routes
from cargohold.logs import configure_logging
from cargohold.metadata.database import Database
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.metadata.sql_accounts import SqlAccountStore
from cargohold.metadata.sql_advisories import SqlAdvisoryStore
from cargohold.metadata.sql_instruments import SqlInstrumentStore
from cargohold.metadata.sql_outbox import SqlNoticeStore, SqlOutboxStore
from cargohold.metadata.sql_packages import SqlPackageStore
from cargohold.metadata.sql_pulls import SqlPullStore
from cargohold.metadata.sql_schedules import SqlScheduleStore
from cargohold.metadata.sql_signatures import SqlSignatureStore
from cargohold.metadata.sql_status import SqlStatusStore
from cargohold.metadata.sql_vulns import SqlVulnerabilityStore
from cargohold.metadata.sql_web import SqlWebStore
from cargohold.metadata.sql_webhooks import SqlWebhookIndex
from cargohold.oci.errors import RegistryError
from cargohold.registry.jobs import PushJobs
from cargohold.registry.keyring import REFRESH_INTERVAL as KEY_REFRESH_INTERVAL
from cargohold.registry.schedules import Scheduler
from cargohold.registry.services import Services
from cargohold.registry.signing.file_keys import FileKeyStore
from cargohold.registry.signing.keys import KeyStore
from cargohold.registry.status import StatusService
from cargohold.registry.status_checks import HTTP_TIMEOUT, CheckContext, default_checks
from cargohold.settings import FilesystemStorage, S3Storage, Settings
from cargohold.storage.base import BlobStore
from cargohold.storage.filesystem import FilesystemBlobStore
from cargohold.web.catalog import routes as catalog_routes
from cargohold.web.network import routes as network_routes
from cargohold.web.status import routes as status_routes

log = structlog.get_logger(__name__)

_EXPIRY_INTERVAL = 600.0
UPLOAD_EXPIRY_JOB = "uploads.expiry"
# How often each process asks whether a once-across-processes job is due.
_SCHEDULE_TICK = 60.0
# How stale another worker's request counts may be in a scrape.
_METRICS_FLUSH = 1.0


def build_store(settings: Settings) -> BlobStore:
    match settings.storage:
        case FilesystemStorage(io_threads=threads):
            return FilesystemBlobStore(settings.storage_root, io_threads=threads)
        case S3Storage() as s3:
            from cargohold.storage.s3 import S3BlobStore  # noqa: PLC0415 - botocore is big

            return S3BlobStore(
                bucket=s3.bucket,
                endpoint_url=s3.endpoint_url,
                region=s3.region,
                access_key_id=s3.access_key_id,
                secret_access_key=s3.secret_access_key,
                prefix=s3.prefix,
                redirect=s3.redirect,
                presign_seconds=s3.presign_seconds,
                part_size=s3.part_size,
            )


def replica_name(settings: Settings) -> str:
    """This server's name in ``X-Cargohold-Replica``: ``server.replica_id``, else
    ``<hostname>-<port>`` (unique per replica on one machine, as the metric dirs)."""
    return (
        settings.server.replica_id or f"{socket.gethostname()}-{settings.server.port}"
    )


def open_database(settings: Settings) -> Database:
    """The metadata database with the pool ``[database]`` asks for."""
    return Database(
        settings.database_url,
        pool_size=settings.database.pool_size,
        max_overflow=settings.database.max_overflow,
        pool_timeout=settings.database.pool_timeout_seconds,
    )


def open_services(
    settings: Settings,
    *,
    migrate: bool = True,
    signing_keys: KeyStore | None = None,
    clock: Callable[[], float] = time.time,
) -> Services:
    """Open the database and blob store named by ``settings``.

    ``signing_keys``: the registry's signing keys; default the files in
    ``signing.key_dir`` (made at start when signing is enabled and there are none).
    ``clock`` is the wall clock the services read for expiry (tests move it).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings)
    if migrate:
        from cargohold.metadata.migrate import upgrade  # noqa: PLC0415 - Alembic is big

        upgrade(database)
    host = settings.server.public_host
    files = None
    keys = signing_keys
    if keys is None:
        keys = files = FileKeyStore(settings.signing_key_dir, identity=host)
    services = Services.build(
        SqlMetadataStore(database),
        build_store(settings),
        SqlAccountStore(database),
        settings.auth,
        advisory_store=SqlAdvisoryStore(database),
        advisory_settings=settings.advisories,
        pull_store=SqlPullStore(database),
        schedules=SqlScheduleStore(database),
        pull_settings=settings.pulls,
        trusted_proxies=settings.server.trusted_proxies,
        outbox_store=SqlOutboxStore(database),
        notice_store=SqlNoticeStore(database),
        outbox_settings=settings.outbox,
        smtp_settings=settings.smtp,
        public_url=settings.server.public_url,
        max_blob_bytes=settings.registry.max_blob_bytes,
        webhook_index=SqlWebhookIndex(database),
        webhooks=settings.webhooks,
        jobs=PushJobs(settings.signing, settings.sbom),
        signature_store=SqlSignatureStore(database),
        signing_keys=keys,
        signing_settings=settings.signing,
        public_host=host,
        make_signing_keys=files.ensure if files else None,
        close_signing_keys=files.close if files else None,
        vuln_store=SqlVulnerabilityStore(database),
        package_store=SqlPackageStore(database),
        web_store=SqlWebStore(database),
        sbom_settings=settings.sbom,
        instruments=SqlInstrumentStore(database),
        clock=clock,
    )
    return dataclasses.replace(
        services, status=_status_service(settings, services, database, clock)
    )


def _status_service(
    settings: Settings,
    services: Services,
    database: Database,
    clock: Callable[[], float],
) -> StatusService:
    store = SqlStatusStore(database)
    # The registry's own address is probed on loopback, where its certificate's
    # names may not match; upstreams are verified as usual.
    own = httpx.AsyncClient(timeout=HTTP_TIMEOUT, verify=False)  # noqa: S501
    upstreams = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
    context = CheckContext(
        settings=settings,
        http=own,
        upstream_http=upstreams,
        blob_store=services.store,
        instruments=SqlInstrumentStore(database),
        status_store=store,
        verifier=services.auth.verifier,
    )

    async def close() -> None:
        await own.aclose()
        await upstreams.aclose()

    host = settings.server.public_host
    base = settings.server.public_url or f"http://{host}"
    return StatusService(
        store,
        Scheduler(SqlScheduleStore(database), clock=clock),
        default_checks(context),
        name=settings.status.name or host,
        url=f"{base.rstrip('/')}/status",
        interval=settings.status.interval_seconds,
        audit=services.auth.audit,
        close=close,
        clock=clock,
    )


async def _every(
    interval: float, job: Callable[[], Awaitable[object]], what: str
) -> None:
    """Run ``job`` every ``interval`` seconds; a failure is logged, never fatal."""
    while True:
        await asyncio.sleep(interval)
        try:
            await job()
        except Exception:
            log.exception("background job failed; will retry", job=what)


def _background(services: Services, settings: Settings) -> list[asyncio.Task[None]]:
    ttl = settings.registry.upload_ttl_hours * 3600

    async def expire() -> None:
        expired = await services.uploads.expire(time.time() - ttl)
        if expired:
            log.info("expired idle uploads", count=expired)

    async def expire_uploads() -> None:
        # Once across processes and replicas: one holds the lease, the others skip.
        await services.scheduler.run_if_due(
            UPLOAD_EXPIRY_JOB,
            expire,
            every=_EXPIRY_INTERVAL,
            lease_seconds=_EXPIRY_INTERVAL,
        )

    async def pull_retention() -> None:
        if settings.pulls.enabled:
            await services.pulls.retention()

    tasks = []
    status = services.status
    if status is not None and settings.status.enabled:
        # Every process ticks; the lease lets one run each round (a third of the
        # interval keeps rounds close to it whichever process wins).
        tick = max(1.0, settings.status.interval_seconds / 3)
        tasks.append(asyncio.create_task(_every(tick, status.tick, "status checks")))
    if services.email is None:
        log.info(
            "smtp.host is not set: email notices wait in the outbox until it is",
        )
    return [
        *tasks,
        asyncio.create_task(_every(_SCHEDULE_TICK, expire_uploads, "upload expiry")),
        asyncio.create_task(_every(_SCHEDULE_TICK, pull_retention, "pull retention")),
        # Every process delivers the outbox; row leases keep deliveries apart.
        asyncio.create_task(services.outbox.run()),
        # Keys rotated by another process become accepted here well before they sign.
        asyncio.create_task(
            _every(KEY_REFRESH_INTERVAL, services.auth.keyring.refresh, "key refresh")
        ),
    ]


async def _flush_metrics(metrics: instruments.RequestMetrics) -> None:
    """Write this process's request tallies to the shared metric files every second."""
    while True:
        await asyncio.sleep(_METRICS_FLUSH)
        metrics.flush()


def create_app(
    settings: Settings, *, services: Services | None = None, migrate: bool = True
) -> Starlette:
    """Build the ASGI app.

    ``services`` may be injected (tests); else opened at start.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        svc = services or open_services(settings, migrate=migrate)
        app.state.services = svc
        await svc.start()
        tasks = _background(svc, settings)
        if request_metrics is not None:
            tasks.append(asyncio.create_task(_flush_metrics(request_metrics)))
        try:
            yield
        finally:
            if request_metrics is not None:
                request_metrics.flush()
            for task in tasks:
                task.cancel()
            # Let them unwind (an outbox round settles what it delivered) first.
            await asyncio.gather(*tasks, return_exceptions=True)
            if services is None:
                await svc.close()

    request_metrics = (
        instruments.RequestMetrics(CollectorRegistry())
        if settings.metrics.enabled
        else None
    )
    app = Starlette(
        routes=[
            *instruments.routes,
            *token_routes,
            *management_routes,
            *wellknown_routes,
            *network_routes,
            *status_routes,
            *catalog_routes,
            *routes,
        ],
        middleware=[
            Middleware(
                instruments.Instrumented,
                access_log=settings.log.access,
                metrics=request_metrics,
                replica=replica_name(settings),
            )
        ],
        exception_handlers={
            RegistryError: errors.registry_error,
            HTTPException: errors.http_error,
            ClientDisconnect: errors.client_disconnected,
            Exception: errors.unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.request_metrics = request_metrics
    if services is not None:
        app.state.services = services  # usable without running the lifespan (tests)
    return app


def from_environment() -> Starlette:
    """App factory for server workers.

    Settings from ``CARGOHOLD_CONFIG`` and the env.
    """
    config = os.environ.get("CARGOHOLD_CONFIG")
    environ = {k: v for k, v in os.environ.items() if k != "CARGOHOLD_CONFIG"}
    settings = settings_module.load(Path(config) if config else None, environ)
    configure_logging(settings.log)
    # `cargohold serve` migrated the schema before starting the workers.
    return create_app(settings, migrate=False)
