"""The ``cargohold`` command: serve, fsck, gc, db and config."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import socket
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import structlog

import cargohold
from cargohold import __version__
from cargohold import settings as settings_module
from cargohold.cli_options import config_option, data_dir_option, load_settings
from cargohold.logs import configure_logging
from cargohold.settings import Settings, SettingsError

if TYPE_CHECKING:
    from cargohold.registry.gc import GcResult

log = structlog.get_logger("cargohold")


@click.group()
@click.version_option(__version__, prog_name="cargohold")
def main() -> None:
    """cargohold: an OCI Distribution v1.1 container registry."""


@main.command()
@config_option
@data_dir_option
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 5000).")
@click.option("--workers", type=int, help="Server worker processes (default 1).")
@click.option("--tls-cert", type=click.Path(exists=True, path_type=Path))
@click.option("--tls-key", type=click.Path(exists=True, path_type=Path))
def serve(
    config: Path | None,
    data_dir: Path | None,
    *,
    host: str | None,
    port: int | None,
    workers: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Run the registry."""
    from granian.constants import Interfaces, Loops, SSLProtocols  # noqa: PLC0415
    from granian.server import Server  # noqa: PLC0415

    server_flags = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "workers": workers,
            "tls_cert": tls_cert,
            "tls_key": tls_key,
        }.items()
        if v is not None
    }
    overrides: dict[str, Any] = {"server": server_flags}
    if data_dir is not None:
        overrides["data_dir"] = data_dir.resolve()
    settings = load_settings(config, overrides)
    if bool(settings.server.tls_cert) != bool(settings.server.tls_key):
        raise click.UsageError("TLS needs both --tls-cert and --tls-key")
    _check_port_free(settings.server.host, settings.server.port)
    _check_database_driver(settings)
    configure_logging(settings.log)

    _metrics_directory(settings)
    # Migrate and bootstrap once, before workers start, in a short-lived child process:
    # the server's main process only supervises workers and need not hold the whole
    # application (and its memory) for the registry's lifetime.
    generated = _prepare_in_child(settings)
    if generated is not None:
        click.secho(
            f"Created the first administrator {settings.admin.user or 'admin'!r} "
            f"with password {generated!r}. It is shown only this once: store it, "
            "or set CARGOHOLD_ADMIN_PASSWORD on first start instead.",
            fg="yellow",
            err=True,
        )
    if settings.auth.mode == "none":
        log.warning(
            "AUTHENTICATION IS OFF: anyone who can reach this port may push, pull and "
            "delete anything. Use auth mode 'none' only for a throwaway local registry."
        )
    _export(config, settings)
    scheme = "https" if settings.server.tls_cert else "http"
    log.info(
        "cargohold listening",
        url=f"{scheme}://{settings.server.host}:{settings.server.port}",
        data_dir=str(settings.data_dir.resolve()),
        database=settings.database_url.split("?")[0],
        workers=settings.server.workers,
        version=__version__,
    )
    # granian turns a dotted target into a path relative to the working directory (and
    # mis-resolves it inside another package); name the module by its file instead.
    app_module = Path(cargohold.__file__).resolve().parent / "api" / "app.py"
    Server(
        f"{app_module}:from_environment",
        factory=True,
        address=settings.server.host,
        port=settings.server.port,
        interface=Interfaces.ASGI,
        workers=settings.server.workers,
        loop=Loops.uvloop,
        websockets=False,
        log_level=settings.log.level,  # type: ignore[arg-type]
        ssl_cert=settings.server.tls_cert,
        ssl_key=settings.server.tls_key,
        ssl_protocol_min=SSLProtocols.tls12,
        workers_kill_timeout=int(settings.server.shutdown_timeout),
        respawn_failed_workers=True,
    ).serve()


def _check_database_driver(settings: Settings) -> None:
    from cargohold.metadata.database import DriverMissing, require_driver  # noqa: PLC0415

    if settings.database_url.startswith("sqlite"):
        return
    try:
        require_driver(settings.database_url)
    except DriverMissing as exc:
        raise click.ClickException(str(exc)) from None


def _metrics_directory(settings: Settings) -> None:
    """Give the workers one empty directory for prometheus-client's multiprocess mode.

    Set in the environment before any worker imports the client, so every worker
    writes its counters there and a scrape of any worker reports the sum. Emptied at
    each start: the counters of a previous server run are not this run's. One per host
    and port, so servers sharing a data directory (replicas on shared storage) keep
    theirs apart.
    """
    instance = f"{socket.gethostname()}-{settings.server.port}"
    directory = settings.data_dir.resolve() / "run" / "metrics" / instance
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _check_port_free(host: str, port: int) -> None:
    """Fail if something already listens on ``host:port``.

    The server's workers bind with ``SO_REUSEPORT``, so a second ``cargohold serve``
    on a busy port would start without an error and share the port with the first
    (each answering some requests). A plain bind, without that option, is refused
    while anyone listens there.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise click.ClickException(f"cannot resolve {host!r}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}. Is another "
                "cargohold (or other server) running there? Stop it, or choose "
                "another --port."
            ) from None


def _prepare_in_child(settings: Settings) -> str | None:
    # fork: the parent has no threads yet, and unlike spawn it starts no extra
    # resource-tracker process that would live as long as the server.
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_prepare_sync, args=(settings, sender))
    child.start()
    sender.close()
    try:
        outcome: tuple[bool, str | None] = receiver.recv()
    except EOFError:
        outcome = (False, "the preparation process died; see the log above")
    child.join()
    ok, value = outcome
    if not ok:
        raise click.ClickException(f"could not prepare the data directory: {value}")
    return value


def _prepare_sync(settings: Settings, result: Connection) -> None:
    configure_logging(settings.log)
    try:
        result.send((True, asyncio.run(_prepare(settings))))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which exits
        result.send((False, f"{type(exc).__name__}: {exc}"))
    finally:
        result.close()


async def _prepare(settings: Settings) -> str | None:
    from cargohold.api.app import open_services  # noqa: PLC0415
    from cargohold.registry.bootstrap import bootstrap  # noqa: PLC0415

    services = open_services(settings)
    try:
        return await bootstrap(services, settings.admin)
    finally:
        await services.close()


def _export(config: Path | None, settings: Settings) -> None:
    """Pass the resolved settings to the server workers through their environment."""
    if config is not None:
        os.environ["CARGOHOLD_CONFIG"] = str(config.resolve())
    os.environ["CARGOHOLD_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["CARGOHOLD_SERVER_HOST"] = settings.server.host
    os.environ["CARGOHOLD_SERVER_PORT"] = str(settings.server.port)


@main.command()
@config_option
@data_dir_option
@click.option("--repair", is_flag=True, help="Fix what can be fixed safely.")
def fsck(config: Path | None, data_dir: Path | None, *, repair: bool) -> None:
    """Check metadata against blob storage (and repair with --repair)."""
    from cargohold.api.app import open_services  # noqa: PLC0415
    from cargohold.registry.maintenance import fsck as run_fsck  # noqa: PLC0415

    settings = load_settings(config, {"data_dir": data_dir} if data_dir else {})
    configure_logging(settings.log)

    async def run() -> int:
        services = open_services(settings)
        try:
            report = await run_fsck(
                services,
                repair=repair,
                grace_seconds=settings.registry.gc_grace_hours * 3600,
            )
        finally:
            await services.close()
        sections: dict[str, list[Any]] = {
            "blob recorded but missing from storage": report.missing_blobs,
            "blob of the wrong size in storage": report.wrong_size,
            "manifest refers to a missing blob or child": report.dangling_references,
            "bytes in storage with no record": report.orphan_blobs,
            "upload bytes with no session": report.orphan_uploads,
            "upload session with no bytes": report.sessions_without_bytes,
            "blob deletion interrupted (gc killed)": [
                stone.digest for stone in report.interrupted_deletions
            ],
        }
        for title, items in sections.items():
            for item in items:
                text = " ".join(item) if isinstance(item, tuple) else item
                click.echo(f"{title}: {text}")
        click.echo(f"{report.problems} problem(s) found, {report.repaired} repaired")
        if report.problems and not repair:
            click.echo("run `cargohold fsck --repair` to fix them")
            return 1
        if repair and report.unrepaired:
            click.echo(
                f"{report.unrepaired} manifest reference(s) point at content that is "
                "gone: push those images again (or delete the manifests)"
            )
            return 1
        return 0

    sys.exit(asyncio.run(run()))


@main.command()
@config_option
@data_dir_option
@click.option(
    "--dry-run", is_flag=True, help="Print what would be deleted; change nothing."
)
@click.option(
    "--delete-untagged",
    is_flag=True,
    help="Also delete manifests no tag reaches (older than the grace period).",
)
def gc(
    config: Path | None,
    data_dir: Path | None,
    *,
    dry_run: bool,
    delete_untagged: bool,
) -> None:
    """Delete unused blobs, dead links and idle uploads (safe while serving)."""
    from cargohold.api.app import open_services  # noqa: PLC0415
    from cargohold.registry.gc import GcOptions, collect_garbage  # noqa: PLC0415

    settings = load_settings(config, {"data_dir": data_dir} if data_dir else {})
    configure_logging(settings.log)
    options = GcOptions(
        grace_seconds=settings.registry.gc_grace_hours * 3600,
        upload_ttl_seconds=settings.registry.upload_ttl_hours * 3600,
        delete_untagged=delete_untagged,
        dry_run=dry_run,
    )

    async def run() -> None:
        services = open_services(settings)
        try:
            result = await collect_garbage(services, options)
        finally:
            await services.close()
        _echo_gc(result)

    asyncio.run(run())


def _echo_gc(result: GcResult) -> None:
    if result.dry_run:
        for repository, digest in result.manifests:
            click.echo(f"would delete manifest: {repository}@{digest}")
        for repository, digest in result.links:
            click.echo(f"would unlink blob: {repository}@{digest}")
        for digest, size in result.blobs:
            click.echo(f"would delete blob: {digest} ({size} bytes)")
    verb = "would delete" if result.dry_run else "deleted"
    click.echo(
        f"{verb} {result.blobs_deleted} blob(s), {result.bytes_freed} bytes; "
        f"{result.links_dropped} link(s), {result.manifests_removed} manifest(s); "
        f"{'would expire' if result.dry_run else 'expired'} "
        f"{result.uploads_expired} upload(s); "
        f"reclaimable: {result.reclaimable_bytes} bytes"
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@config_option
@data_dir_option
def db_upgrade(config: Path | None, data_dir: Path | None) -> None:
    """Apply schema migrations (the server also does this on start)."""
    from cargohold.metadata.database import Database  # noqa: PLC0415
    from cargohold.metadata.migrate import upgrade  # noqa: PLC0415

    settings = load_settings(config, {"data_dir": data_dir} if data_dir else {})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url)
    upgrade(database)
    asyncio.run(database.close())
    click.echo("schema is up to date")


@main.group()
def keys() -> None:
    """Token signing keys."""


@keys.command("rotate")
@config_option
@data_dir_option
def keys_rotate(config: Path | None, data_dir: Path | None) -> None:
    """Add a signing key; it signs once every server process has loaded it.

    Older keys stay accepted for auth.key_retention_hours: issued tokens keep working.
    """
    from cargohold.api.app import open_services  # noqa: PLC0415
    from cargohold.registry.keyring import ACTIVATION_DELAY  # noqa: PLC0415

    settings = load_settings(config, {"data_dir": data_dir} if data_dir else {})
    configure_logging(settings.log)

    async def run() -> str:
        services = open_services(settings)
        try:
            key = await services.auth.keyring.rotate()
            services.auth.audit.record("system", "key.rotate", key.kid)
            return key.kid
        finally:
            await services.close()

    kid = asyncio.run(run())
    click.echo(
        f"added signing key {kid}; it starts signing in {ACTIVATION_DELAY:.0f} seconds"
    )


@keys.command("list")
@config_option
@data_dir_option
def keys_list(config: Path | None, data_dir: Path | None) -> None:
    """The published keys; the one marked * signs new tokens."""
    from cargohold.api.app import open_services  # noqa: PLC0415

    settings = load_settings(config, {"data_dir": data_dir} if data_dir else {})
    configure_logging(settings.log)

    async def run() -> list[str]:
        services = open_services(settings)
        try:
            keyset = await services.auth.keyring.load()
        finally:
            await services.close()
        return [
            f"{'*' if kid == keyset.active.kid else ' '} {kid} {key.algorithm}"
            for kid, key in keyset.accepted.items()
        ]

    for line in asyncio.run(run()):
        click.echo(line)


@main.group("config")
def config_group() -> None:
    """Configuration files."""


@config_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def config_check(paths: tuple[Path, ...]) -> None:
    """Load each configuration file and report errors."""
    failed = False
    for path in paths:
        try:
            settings_module.load(path, {})
        except SettingsError as exc:
            click.echo(f"{path}: {exc}", err=True)
            failed = True
        else:
            click.echo(f"{path}: ok")
    sys.exit(1 if failed else 0)


def _add_credential_commands() -> None:
    from cargohold.credentials.login import login, logout  # noqa: PLC0415

    main.add_command(login)
    main.add_command(logout)


_add_credential_commands()


# The admin groups (users, orgs, members, grants, tokens, oidc, repos, audit, webhooks),
# advisories and tag history, pull events, the inbox and the outbox, vulnerabilities.
from cargohold.cli_admin import GROUPS as ADMIN_GROUPS  # noqa: E402
from cargohold.cli_advisories import GROUPS as ADVISORY_GROUPS  # noqa: E402
from cargohold.cli_delivery import GROUPS as DELIVERY_GROUPS  # noqa: E402
from cargohold.cli_migrate import COMMANDS as MIGRATE_COMMANDS  # noqa: E402
from cargohold.cli_network import GROUPS as NETWORK_GROUPS  # noqa: E402
from cargohold.cli_pulls import pulls as _pulls  # noqa: E402
from cargohold.cli_sbom import sbom as _sbom  # noqa: E402
from cargohold.cli_signing import signing as _signing  # noqa: E402
from cargohold.cli_status import GROUPS as STATUS_GROUPS  # noqa: E402
from cargohold.cli_verify import verify as _verify  # noqa: E402
from cargohold.cli_vulns import GROUPS as VULN_GROUPS  # noqa: E402

for _group in (
    *ADMIN_GROUPS,
    *ADVISORY_GROUPS,
    _pulls,
    *DELIVERY_GROUPS,
    *MIGRATE_COMMANDS,
    *NETWORK_GROUPS,
    _sbom,
    _signing,
    *STATUS_GROUPS,
    _verify,
    *VULN_GROUPS,
):
    main.add_command(_group)
