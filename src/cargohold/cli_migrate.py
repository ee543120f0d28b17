"""``cargohold migrate-metadata`` and ``cargohold migrate-storage``: move a registry's
metadata to another database and its blobs to another store, verified and resumable.

Both only read their source; stop the servers first (docs/operations.md, "Moving to
PostgreSQL and S3"). Exit codes: 0 done and verified; 1 failed or not verified (run
again to resume); 2 bad usage (a URL, an option, the same place twice); 3 a database or
store cannot be reached or used; 4 the destination holds other data (see ``--resume``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cargohold import settings as settings_module
from cargohold.cli_options import config_option, data_dir_option, load_settings
from cargohold.logs import configure_logging
from cargohold.settings import Settings, SettingsError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from cargohold.oci.digest import Digest
    from cargohold.storage.transfer import Journal, StorageTransferResult

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 3
# The settings that say which store a [storage] section names (not how it is used).
_STORE_IDENTITY = ("backend", "endpoint_url", "region", "bucket", "prefix")
_SHOWN_FAILURES = 20


def _source_settings(config: Path | None, data_dir: Path | None) -> Settings:
    return load_settings(config, {"data_dir": data_dir} if data_dir else {})


@click.command("migrate-metadata")
@config_option
@data_dir_option
@click.option(
    "--to",
    "destination",
    required=True,
    metavar="URL",
    envvar="CARGOHOLD_MIGRATE_TO",
    help="The destination database, empty (e.g. postgresql+psycopg://USER:PASSWORD@"
    "HOST/DATABASE). Also read from CARGOHOLD_MIGRATE_TO, which keeps the password "
    "out of the process list.",
)
@click.option(
    "--from",
    "source",
    metavar="URL",
    help="The source database (default: the configured one, database.url or "
    "<data_dir>/cargohold.db).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted migration into the destination, or bring one that "
    "holds an earlier copy of this source up to date.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Rows per destination transaction.",
)
def migrate_metadata(
    config: Path | None,
    data_dir: Path | None,
    *,
    destination: str,
    source: str | None,
    resume: bool,
    batch_size: int,
) -> None:
    """Copy the metadata into another database (SQLite to PostgreSQL), verified.

    The destination gets the schema first, then every table in batches; at the end
    every table's row count and content checksum must be equal on both sides.
    Interrupted, it continues where it stopped with --resume. Stop the servers first:
    the source is read as one snapshot, and a write to it during the copy fails the
    run.
    """
    from cargohold.metadata.transfer import (  # noqa: PLC0415
        MetadataTransfer,
        TransferError,
    )

    settings = _source_settings(config, data_dir)
    configure_logging(settings.log)
    try:
        transfer = MetadataTransfer(
            source or settings.database_url,
            destination,
            batch_size=batch_size,
            resume=resume,
        )
        result = transfer.run()
    except TransferError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(
        f"migrated {result.rows} rows in {len(result.tables)} tables "
        f"({result.copied} written by this run{', resumed' if result.resumed else ''}) "
        f"from {result.source} to {result.destination} in {result.seconds:.1f} s; "
        "verified: every table's row count and checksum are equal"
    )


@click.command("migrate-storage")
@config_option
@data_dir_option
@click.option(
    "--to",
    "destination",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A configuration file whose [storage] section (and data_dir) names the "
    "destination store, e.g. the replicas' file. CARGOHOLD_* variables do not apply "
    "to it (they configure the source).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Blobs copied at once.",
)
@click.option(
    "--recheck",
    is_flag=True,
    help="Read back and hash every destination blob, also those an earlier run "
    "verified (else they are trusted if present with the right size).",
)
@click.option(
    "--referenced-only",
    is_flag=True,
    help="Copy only the blobs the metadata records, not bytes awaiting gc.",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where verified blobs are recorded across runs "
    "(default <destination data_dir>/migrate-storage.journal).",
)
def migrate_storage(
    config: Path | None,
    data_dir: Path | None,
    *,
    destination: Path,
    concurrency: int,
    recheck: bool,
    referenced_only: bool,
    journal: Path | None,
) -> None:
    """Copy every blob into another store (filesystem to S3), each one verified.

    Each blob is streamed through an upload at the destination, then read back and
    hashed there: it counts only if its SHA-256 and size are right. Run again to
    resume: blobs verified before are skipped. The source is only read.
    """
    from cargohold.storage.transfer import Journal  # noqa: PLC0415

    settings = _source_settings(config, data_dir)
    configure_logging(settings.log)
    try:
        target = settings_module.load(destination, {})
    except SettingsError as exc:
        msg = f"destination configuration: {exc}"
        raise click.UsageError(msg) from None
    source_name, target_name = describe_store(settings), describe_store(target)
    if source_name == target_name:
        msg = f"the destination is the source store ({source_name})"
        raise click.UsageError(msg)
    if referenced_only:
        _require_database(settings.database_url)
    journal = journal or target.data_dir / "migrate-storage.journal"
    with Journal(journal, target_name) as record:
        result = asyncio.run(
            _copy_blobs(
                settings,
                target,
                record,
                concurrency=concurrency,
                recheck=recheck,
                referenced_only=referenced_only,
            )
        )
    _echo_storage(result, source_name, target_name, journal)
    if result.failed:
        sys.exit(EXIT_FAILED)


def describe_store(settings: Settings) -> str:
    """Which store ``settings`` names (never a secret), to tell two stores apart."""
    storage: Any = settings.storage  # one of the backends' settings
    if storage.backend == "filesystem":
        return f"filesystem {settings.storage_root.resolve()}"
    named = [
        f"{name}={getattr(storage, name)}"
        for name in _STORE_IDENTITY
        if getattr(storage, name, None) not in (None, "")
    ]
    return " ".join(named)


async def _copy_blobs(
    settings: Settings,
    target: Settings,
    journal: Journal,
    *,
    concurrency: int,
    recheck: bool,
    referenced_only: bool,
) -> StorageTransferResult:
    from cargohold.api.app import build_store  # noqa: PLC0415
    from cargohold.storage.transfer import (  # noqa: PLC0415
        StorageTransfer,
        source_digests,
    )

    source = build_store(settings)
    destination = build_store(target)
    # Client-backed stores (S3) hold connections until closed.
    try:
        try:
            await destination.check()
        except Exception as exc:  # noqa: BLE001 - any backend's error, shown as it is
            click.echo(
                f"Error: the destination store ({describe_store(target)}) cannot be "
                f"written: {type(exc).__name__}: {exc}. Check its settings in the "
                "destination configuration, its credentials and that it is reachable.",
                err=True,
            )
            sys.exit(EXIT_UNAVAILABLE)
        digests = _referenced(settings) if referenced_only else source_digests(source)
        transfer = StorageTransfer(
            source,
            destination,
            journal,
            concurrency=concurrency,
            recheck=recheck,
            # Listed by the store itself, then gone: gc ran on a live source.
            missing_ok=not referenced_only,
        )
        return await transfer.run(digests)
    finally:
        await source.close()
        await destination.close()


def _require_database(url: str) -> None:
    """Exit unless the source's metadata exists (never create an empty SQLite file)."""
    import sqlalchemy as sa  # noqa: PLC0415

    parsed = sa.engine.make_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and not Path(parsed.database or "").is_file()
    ):
        click.echo(f"Error: no metadata database at {parsed.database}", err=True)
        sys.exit(EXIT_UNAVAILABLE)


async def _referenced(settings: Settings) -> AsyncIterator[Digest]:
    """The blobs the source's metadata records as present, in digest order."""
    from cargohold.metadata.database import Database  # noqa: PLC0415
    from cargohold.metadata.sql import SqlMetadataStore  # noqa: PLC0415
    from cargohold.storage.transfer import parse_digest  # noqa: PLC0415

    url = settings.database_url
    meta = SqlMetadataStore(Database(url))
    try:
        records = await meta.blobs.all_records()
    finally:
        await meta.close()
    for text in sorted(records):
        digest = parse_digest(text)
        if digest is not None:
            yield digest


def _echo_storage(
    result: StorageTransferResult, source: str, target: str, journal: Path
) -> None:
    for digest, reason in result.failed[:_SHOWN_FAILURES]:
        click.echo(f"failed: {digest}: {reason}", err=True)
    if len(result.failed) > _SHOWN_FAILURES:
        click.echo(f"… and {len(result.failed) - _SHOWN_FAILURES} more", err=True)
    click.echo(
        f"{result.blobs} blob(s) from {source} to {target}: {result.copied} copied, "
        f"{result.present} already there, {result.skipped} verified by an earlier "
        f"run, {result.replaced} replaced (wrong at the destination), "
        f"{result.vanished} deleted from the source meanwhile, "
        f"{len(result.failed)} failed; {result.bytes_copied} bytes copied, "
        f"{result.bytes_verified} bytes read back and hashed, "
        f"in {result.seconds:.1f} s (journal: {journal})"
    )
    if result.failed:
        click.echo(
            "Not every blob was migrated: fix the causes above and run the same "
            "command again (verified blobs are skipped).",
            err=True,
        )


COMMANDS = (migrate_metadata, migrate_storage)
