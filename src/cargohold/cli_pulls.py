"""``cargohold pulls``: who pulled what (``GET /api/v1/pulls``, ``/api/v1/me/pulls``),
as a table, JSON or CSV; and ``cargohold pulls prune`` (retention, now).

Like the admin commands it speaks the management API, locally on the data directory
(as the system administrator) or remotely with ``--registry``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import click

from cargohold.cli_admin_support import Target, call, table, target_options

COLUMNS = (
    "time",
    "identity",
    "repository",
    "reference",
    "digest",
    "client",
    "tool",
    "tool_version",
    "platform",
    "user_agent",
)
_PAGE = 1000


def _fetch(
    target: Target, path: str, params: dict[str, str | int], limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` pulls, following the API's pages."""
    pulls: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(pulls) < limit:
        page_params = params | {"limit": min(_PAGE, limit - len(pulls))}
        if cursor:
            page_params["next"] = cursor
        answer = call(target, "GET", path, params=page_params)
        pulls.extend(answer["pulls"])
        cursor = answer.get("next")
        if not cursor:
            break
    return pulls[:limit]


def _csv(pulls: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(pulls)
    return out.getvalue()


@click.group("pulls", invoke_without_command=True)
@click.option("--repository", metavar="REPO", help="Only this repository.")
@click.option("--digest", metavar="DIGEST", help="Only pulls served this digest.")
@click.option("--tag", metavar="TAG", help="Only pulls that asked for this tag.")
@click.option("--identity", metavar="SUBJECT", help="Only this identity (user:alice).")
@click.option("--since", metavar="TIME", help="From this ISO 8601 time (with a zone).")
@click.option("--until", metavar="TIME", help="Before this ISO 8601 time.")
@click.option(
    "--limit",
    type=click.IntRange(1, 1_000_000),
    default=100,
    show_default=True,
    help="At most this many pulls, newest first.",
)
@click.option("--me", is_flag=True, help="My own pulls (any identity may ask).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (with a header row).")
@target_options
@click.pass_context
def pulls(ctx: click.Context, target: Target, /, *, limit: int, me: bool,
          as_csv: bool, **filters: str | None) -> None:  # fmt: skip
    """Recorded manifest pulls, newest first (admins: all; owners: their orgs')."""
    if ctx.invoked_subcommand is not None:
        return
    if as_csv and target.as_json:
        raise click.UsageError("--csv and --json exclude each other")
    params: dict[str, str | int] = {k: v for k, v in filters.items() if v}
    found = _fetch(target, "/me/pulls" if me else "/pulls", params, limit)
    if target.as_json:
        click.echo(json.dumps({"pulls": found}, indent=2, sort_keys=True))
    elif as_csv:
        click.echo(_csv(found), nl=False)
    else:
        click.echo(table(found, COLUMNS[:-1]) if found else "(none)")


@pulls.command("prune")
@click.option(
    "--config",
    envvar="CARGOHOLD_CONFIG",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML configuration file.",
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The data directory (default ./cargohold-data).")  # fmt: skip
def prune(config: Path | None, data_dir: Path | None) -> None:
    """Delete pulls past retention now, on the data directory."""
    from cargohold.api.app import open_services  # noqa: PLC0415 - the server stack

    local = Target(None, None, None, config, data_dir, as_json=False)
    settings = local._settings()  # noqa: SLF001 - same package, same checks

    async def run() -> tuple[int, int]:
        services = open_services(settings)
        try:
            return await services.pulls.prune()
        finally:
            await services.close()

    events, daily = asyncio.run(run())
    click.echo(f"deleted {events} pull events and {daily} daily aggregates")
