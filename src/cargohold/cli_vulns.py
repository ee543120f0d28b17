"""``cargohold vulns``: import an offline OSV feed, and an image's vulnerabilities.

``vulns import PATH`` runs on the data directory (like ``pulls prune``): it checks
every document, stores the feed and queues every described image for matching again
(the server's outbox workers do the matching). ``vulns list REF`` is one management
API call (``GET /api/v1/repositories/{name}/manifests/{ref}/vulnerabilities``),
locally or with ``--registry``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

import click

from cargohold.cli_admin_support import Target, call, seg, show, target_options
from cargohold.cli_options import config_option, data_dir_option

COLUMNS = ("id", "severity", "ecosystem", "package", "version", "fixed", "summary")


@click.group("vulns")
def vulns() -> None:
    """The vulnerability view: an OSV feed matched against image packages."""


@vulns.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path), metavar="PATH")
@config_option
@data_dir_option
def import_feed(path: Path, config: Path | None, data_dir: Path | None) -> None:
    """Import OSV documents: a directory, zip or tar(.gz) of OSV JSON files.

    Nothing is stored if one document is not valid OSV (the error names it). A
    document already imported is replaced only by a newer ``modified``.
    """
    from cargohold.api.app import open_services  # noqa: PLC0415 - the server stack
    from cargohold.registry.osv_feed import FeedInvalid  # noqa: PLC0415

    local = Target(None, None, None, config, data_dir, as_json=False)
    settings = local._settings()  # noqa: SLF001 - same package, same checks

    async def run() -> str:
        services = open_services(settings)
        try:
            result = await services.vulns.import_feed(path)
        finally:
            await services.close()
        counts = result.counts
        return (
            f"{result.documents} documents: {counts.added} added, {counts.updated} "
            f"updated, {counts.unchanged} unchanged; images queued for matching: "
            f"{result.queued}"
        )

    try:
        click.echo(asyncio.run(run()))
    except FeedInvalid as exc:
        raise click.ClickException(f"feed refused, nothing imported: {exc}") from None


@vulns.command("list")
@click.argument("reference", metavar="REPO@DIGEST|REPO:TAG")
@target_options
def list_vulnerabilities(target: Target, *, reference: str) -> None:
    """An image's vulnerabilities, worst first, with the fixed versions."""
    repository, sep, ref = reference.rpartition("@")
    if not sep:
        repository, sep, ref = reference.rpartition(":")
        if "/" in ref:
            sep = ""
    if not sep or not repository or not ref:
        raise click.BadParameter(
            "expected REPO@DIGEST or REPO:TAG", param_hint="REFERENCE"
        )
    path = (
        f"/repositories/{quote(repository, safe='/')}/manifests/{seg(ref)}"
        "/vulnerabilities"
    )
    result = call(target, "GET", path)
    if target.as_json:
        show(target, result)
        return
    counts = ", ".join(f"{n} {s}" for s, n in result["counts"].items() if n)
    click.echo(f"{result['repository']}@{result['digest']}: {counts or 'none found'}")
    if not result["described"]:
        click.echo("(the image's packages are not known yet)")
    if result["vulnerabilities"]:
        show(target, result["vulnerabilities"], columns=COLUMNS)


GROUPS = (vulns,)
