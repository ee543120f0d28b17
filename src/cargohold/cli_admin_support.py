"""Shared plumbing of the admin commands: where a call goes, and how results show.

See ``cargohold.cli_admin`` for the commands themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from cargohold import settings as settings_module
from cargohold.auth.policy import Principal
from cargohold.logs import configure_logging
from cargohold.settings import SettingsError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from cargohold.api.management.client import Backend

SYSTEM = Principal("user", "user:<system>", is_admin=True)
VISIBILITIES = ("public", "private")


# -- where a command goes -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    registry: str | None
    username: str | None
    password: str | None
    config: Path | None
    data_dir: Path | None
    as_json: bool

    def open(self) -> Backend:
        # Imported here: the server stack stays off `cargohold --help`.
        from cargohold.api.management import client  # noqa: PLC0415

        if self.registry is None:
            settings = self._settings()
            # Stdout is for answers. The audit log already records every change, so
            # the console shows only warnings and errors.
            quiet = settings.log.level == "error"
            configure_logging(
                dataclasses.replace(settings.log, level="error" if quiet else "warning")
            )
            return client.LocalBackend(settings, SYSTEM)
        if not self.username:
            raise click.UsageError("--registry needs --username")
        if not self.password:
            raise click.UsageError(
                "--registry needs a password: --password-stdin or CARGOHOLD_PASSWORD"
            )
        return client.RemoteBackend(self.registry, self.username, self.password)

    def _settings(self) -> settings_module.Settings:
        overrides = {"data_dir": self.data_dir} if self.data_dir else {}
        try:
            settings = settings_module.load(self.config, os.environ, overrides)
        except SettingsError as exc:
            raise click.UsageError(f"configuration: {exc}") from exc
        # A typo must not create an empty registry next to the real one.
        if settings.database.url is None and not settings.data_dir.is_dir():
            raise click.UsageError(
                f"no data directory at {settings.data_dir}: pass --data-dir or "
                "--config, or --registry URL for a running registry"
            )
        return settings


_OPTIONS = (
    click.option("--registry", metavar="URL",
                 help="Manage a running registry over HTTP, not the local data dir."),
    click.option("--username", "-u", help="Login for --registry."),
    click.option("--password-stdin", is_flag=True,
                 help="Read the --registry password (or a pull token) from the first "
                      "line of stdin; else CARGOHOLD_PASSWORD."),
    click.option("--config", envvar="CARGOHOLD_CONFIG",
                 type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="TOML configuration file (local)."),
    click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                 help="The data directory (local; default ./cargohold-data)."),
    click.option("--json", "as_json", is_flag=True, help="Print the API's JSON."),
)  # fmt: skip


def target_options(command: Callable[..., None]) -> Callable[..., None]:
    """Adds the backend options; the command gets a ``Target`` as first argument.

    The stdin password is read here, before the command may prompt for anything else.
    """

    @functools.wraps(command)
    def run(*, registry: str | None, username: str | None, password_stdin: bool,
            config: Path | None, data_dir: Path | None, as_json: bool,
            **arguments: Any) -> None:  # fmt: skip
        if registry is not None and data_dir is not None:
            raise click.UsageError("--data-dir is for local use, not with --registry")
        password = os.environ.get("CARGOHOLD_PASSWORD")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        command(
            Target(registry, username, password, config, data_dir, as_json), **arguments
        )

    for option in reversed(_OPTIONS):
        run = option(run)
    return run


def call(target: Target, method: str, path: str, *,
         body: Mapping[str, object] | None = None,
         params: Mapping[str, str | int] | None = None) -> Any:  # fmt: skip
    """Run one operation and return its JSON; on refusal, say why and exit 1."""
    from cargohold.api.management.client import ManagementError, Operation  # noqa: PLC0415

    async def run() -> Any:
        backend = target.open()
        try:
            return await backend.call(Operation(method, path, body, params))
        finally:
            await backend.close()

    try:
        return asyncio.run(run())
    except ManagementError as exc:
        if target.as_json:
            error = {"status": exc.status, "code": exc.code, "message": exc.message}
            click.echo(json.dumps({"error": error}), err=True)
        else:
            click.secho(f"error: {exc.message} ({exc.status or exc.code})", fg="red",
                        err=True)  # fmt: skip
        sys.exit(1)


# -- output ---------------------------------------------------------------------------


def _cell(value: object) -> str:
    match value:
        case None:
            return "-"
        case bool():
            return "yes" if value else "no"
        case list() | tuple():
            return ",".join(map(str, value)) or "(none)"
        case dict():
            return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
        case _:
            return str(value)


def table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    headers = [column.upper().replace("_", " ") for column in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in [headers, *cells]
    )


def show(
    target: Target, result: Any, *, columns: Sequence[str] = (), done: str = ""
) -> None:
    """``--json``: the answer as is; else a table of ``columns``, or ``done``."""
    if target.as_json:
        if result is not None:
            click.echo(json.dumps(result, indent=2, sort_keys=True))
    elif columns:
        rows = result if isinstance(result, list) else [result]
        click.echo(table(rows, columns) if rows else "(none)")
    else:
        click.echo(done)


def new_password() -> str:
    value = os.environ.get("CARGOHOLD_NEW_PASSWORD")
    if value:
        return value
    return str(
        click.prompt(
            "New password", hide_input=True, confirmation_prompt=True, err=True
        )
    )


def seg(value: str) -> str:
    """``value`` as one URL path segment (a name never changes the path)."""
    return quote(value, safe="")


def parse_claims(pairs: Sequence[str]) -> dict[str, str]:
    claims = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{pair!r} is not CLAIM=GLOB", param_hint="--claim"
            )
        claims[key] = value
    return claims


# -- commands -------------------------------------------------------------------------

USER_COLUMNS = ("name", "admin", "disabled", "email", "created_at")
GRANT_COLUMNS = ("id", "principal", "repository", "role", "tags", "created_at")
TOKEN_COLUMNS = (
    "id",
    "description",
    "created_by",
    "created_at",
    "expires_at",
    "revoked_at",
)
OIDC_COLUMNS = ("name", "issuer", "audience", "subject", "claims")
REPO_COLUMNS = ("repository", "visibility", "starter_tags", "updated_at")
AUDIT_COLUMNS = ("id", "at", "actor", "action", "target", "outcome", "client", "detail")
