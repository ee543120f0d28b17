"""``cargohold status``: the status page's incidents and maintenances, and ``export``.

``incident`` and ``maintenance`` commands are each one management API call (see
``cli_admin``: the local data directory by default, ``--registry URL`` for a running
registry). ``export DIR`` writes the page, its stylesheet, the Statuspage JSON and the
Atom feed as static files with relative links, to host where the registry is not.
"""

from __future__ import annotations

import asyncio
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import click

from cargohold.cli_admin_support import Target, call, seg, show, target_options
from cargohold.cli_options import config_option, data_dir_option, load_settings
from cargohold.metadata.status import IMPACTS, INCIDENT_STATUSES, MAINTENANCE_STATUSES

INCIDENT_COLUMNS = ("id", "status", "impact", "name", "components", "updated_at")
MAINTENANCE_COLUMNS = ("id", "status", "scheduled_for", "scheduled_until", "name")

_message = click.option("--message", "-m", required=True, help="The update's text.")
_components = click.option(
    "--component",
    "components",
    multiple=True,
    metavar="ID",
    help="An affected component id (repeatable), as /api/v2/components.json names it.",
)


@click.group("status")
def status() -> None:
    """The status page: incidents, scheduled maintenance, static export."""


@status.group("incident")
def incident() -> None:
    """Incidents: investigating, identified, monitoring, resolved."""


@incident.command("create")
@click.argument("name")
@_message
@click.option(
    "--status",
    "state",
    type=click.Choice(INCIDENT_STATUSES),
    default="investigating",
    show_default=True,
)
@click.option(
    "--impact", type=click.Choice(IMPACTS), default="minor", show_default=True
)
@_components
@target_options
def incident_create(
    target: Target,
    *,
    name: str,
    message: str,
    state: str,
    impact: str,
    components: tuple[str, ...],
) -> None:
    """Open an incident named NAME."""
    body = {
        "name": name,
        "body": message,
        "status": state,
        "impact": impact,
        "components": list(components),
    }
    result = call(target, "POST", "/status/incidents", body=body)
    show(target, result, done=f"opened incident {result['id']}")


@incident.command("update")
@click.argument("incident_id")
@click.option("--status", "state", type=click.Choice(INCIDENT_STATUSES), required=True)
@_message
@click.option("--impact", type=click.Choice(IMPACTS))
@_components
@target_options
def incident_update(
    target: Target,
    *,
    incident_id: str,
    state: str,
    message: str,
    impact: str | None,
    components: tuple[str, ...],
) -> None:
    """Post an update to INCIDENT_ID (it moves the incident to --status)."""
    body: dict[str, Any] = {"status": state, "body": message}
    if impact is not None:
        body["impact"] = impact
    if components:
        body["components"] = list(components)
    path = f"/status/incidents/{seg(incident_id)}/updates"
    result = call(target, "POST", path, body=body)
    show(target, result, done=f"incident {incident_id} is {state}")


@incident.command("resolve")
@click.argument("incident_id")
@_message
@target_options
def incident_resolve(target: Target, *, incident_id: str, message: str) -> None:
    """Resolve INCIDENT_ID with a last update."""
    path = f"/status/incidents/{seg(incident_id)}/updates"
    result = call(target, "POST", path, body={"status": "resolved", "body": message})
    show(target, result, done=f"incident {incident_id} is resolved")


@incident.command("list")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@target_options
def incident_list(target: Target, *, limit: int) -> None:
    """Incidents, newest first."""
    result = call(target, "GET", "/status/incidents", params={"limit": limit})
    show(target, result, columns=INCIDENT_COLUMNS)


@status.group("maintenance")
def maintenance() -> None:
    """Scheduled maintenance: scheduled, in_progress, verifying, completed."""


@maintenance.command("schedule")
@click.argument("name")
@_message
@click.option(
    "--from", "start", required=True, metavar="TIME", help="ISO 8601, with a zone."
)
@click.option(
    "--until", "end", required=True, metavar="TIME", help="ISO 8601, with a zone."
)
@_components
@target_options
def maintenance_schedule(
    target: Target,
    *,
    name: str,
    message: str,
    start: str,
    end: str,
    components: tuple[str, ...],
) -> None:
    """Schedule a maintenance window named NAME."""
    body = {
        "name": name,
        "body": message,
        "scheduled_for": start,
        "scheduled_until": end,
        "components": list(components),
    }
    result = call(target, "POST", "/status/maintenances", body=body)
    show(target, result, done=f"scheduled maintenance {result['id']}")


def _move(target: Target, maintenance_id: str, state: str, message: str) -> None:
    path = f"/status/maintenances/{seg(maintenance_id)}/updates"
    result = call(target, "POST", path, body={"status": state, "body": message})
    show(target, result, done=f"maintenance {maintenance_id} is {state}")


@maintenance.command("start")
@click.argument("maintenance_id")
@click.option("--message", "-m", default="The maintenance has started.")
@target_options
def maintenance_start(target: Target, *, maintenance_id: str, message: str) -> None:
    """Mark MAINTENANCE_ID in progress."""
    _move(target, maintenance_id, "in_progress", message)


@maintenance.command("update")
@click.argument("maintenance_id")
@click.option(
    "--status", "state", type=click.Choice(MAINTENANCE_STATUSES), required=True
)
@_message
@target_options
def maintenance_update(
    target: Target, *, maintenance_id: str, state: str, message: str
) -> None:
    """Post an update to MAINTENANCE_ID (it moves it to --status)."""
    _move(target, maintenance_id, state, message)


@maintenance.command("complete")
@click.argument("maintenance_id")
@click.option("--message", "-m", default="The maintenance is complete.")
@target_options
def maintenance_complete(target: Target, *, maintenance_id: str, message: str) -> None:
    """Mark MAINTENANCE_ID completed."""
    _move(target, maintenance_id, "completed", message)


@maintenance.command("list")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@target_options
def maintenance_list(target: Target, *, limit: int) -> None:
    """Maintenances, latest window first."""
    result = call(target, "GET", "/status/maintenances", params={"limit": limit})
    show(target, result, columns=MAINTENANCE_COLUMNS)


_ROOT_LINK = re.compile(r'(href|src)="/(?!/)([^"]*)"')


def _relative(page: str, public_url: str | None) -> str:
    """The layout's root-relative links: the stylesheet next to the page, the rest
    to the registry (when its public URL is known) or left as they are."""

    def fix(match: re.Match[str]) -> str:
        attribute, path = match.groups()
        if path.startswith("static/"):
            return f'{attribute}="{path}"'
        if public_url:
            return f'{attribute}="{public_url.rstrip("/")}/{path}"'
        return match.group(0)

    return _ROOT_LINK.sub(fix, page)


@status.command("export")
@click.argument(
    "directory", type=click.Path(file_okay=False, writable=True, path_type=Path)
)
@config_option
@data_dir_option
def export(config: Path | None, data_dir: Path | None, directory: Path) -> None:
    """Write the status page as static files into DIRECTORY: index.html,
    static/cargohold.css, history.atom and api/v2/*.json (Statuspage's names)."""
    from cargohold.api.app import open_services  # noqa: PLC0415 - the server stack
    from cargohold.web.status_render import (  # noqa: PLC0415
        EXPORT_LINKS,
        atom,
        documents,
        html,
    )

    settings = load_settings(config, {"data_dir": data_dir} if data_dir else {})
    if settings.database.url is None and not settings.data_dir.is_dir():
        raise click.UsageError(f"no data directory at {settings.data_dir}")

    async def read() -> Any:
        services = open_services(settings)
        try:
            assert services.status is not None  # noqa: S101 - open_services builds it
            return await services.status.view()
        finally:
            await services.close()

    view = asyncio.run(read())
    written = {
        "index.html": _relative(
            html(view, EXPORT_LINKS), settings.server.public_url
        ).encode(),
        "static/cargohold.css": (
            files("cargohold.web") / "static" / "cargohold.css"
        ).read_bytes(),
        "history.atom": atom(view, page_url=view.url),
    }
    for name, document in documents(view).items():
        written[f"api/v2/{name}"] = json.dumps(document, indent=2).encode()
    for name, content in written.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    click.echo(f"wrote {len(written)} files to {directory}")


GROUPS = (status,)
