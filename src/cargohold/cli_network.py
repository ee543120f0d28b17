"""``cargohold network`` (what clients must reach) and ``cargohold doctor REGISTRY``.

``network`` reads the configuration (``--config``, ``CARGOHOLD_*``) the server would
run with; it needs no running server. ``doctor`` is a client-side check of the path
to any OCI registry: exit status 0 only if every step passes, 1 if one fails, 2 for
bad arguments.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cargohold.cli_options import config_option, load_settings
from cargohold.doctor import Credentials, Doctor, DoctorUsageError, Target
from cargohold.network import render_text, requirements

# A pull token is a password; the user name is not checked for it.
_TOKEN_USER = "pull-token"  # noqa: S105 - a user name, not a password


@click.command("network")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def network(config: Path | None, *, as_json: bool) -> None:
    """Hosts, ports, paths and TLS a client must reach, and how to put a
    pull-through cache in front, from this configuration."""
    settings = load_settings(config, {})
    req = requirements(settings)
    if as_json:
        click.echo(json.dumps(req.to_json(), indent=2))
    else:
        click.echo(render_text(req), nl=False)


@click.command("doctor")
@click.argument("registry")
@click.option(
    "--image", metavar="REPOSITORY:TAG", help="Fetch its manifest and a blob."
)
@click.option("--username", help="User name for the token realm.")
@click.option("--password", help="Password (with --username).")
@click.option("--token", "pull_token", help="A pull token, instead of a password.")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trust this CA (PEM) instead of the system's trust store.",
)
@click.option("--timeout", type=float, default=10.0, show_default=True)
def doctor(
    registry: str,
    *,
    image: str | None,
    username: str | None,
    password: str | None,
    pull_token: str | None,
    ca_file: Path | None,
    timeout: float,
) -> None:
    """Check, from this machine, that REGISTRY (HOST[:PORT] or a URL; https unless
    http:// is given) can be reached and pulled from, step by step."""
    try:
        target = Target.parse(registry, image)
    except DoctorUsageError as exc:
        raise click.UsageError(str(exc)) from exc
    if pull_token and (username or password):
        raise click.UsageError("--token or --username/--password, not both")
    if bool(username) != bool(password):
        raise click.UsageError("--username and --password go together")
    credentials = None
    if pull_token:
        credentials = Credentials(_TOKEN_USER, pull_token)
    elif username and password:
        credentials = Credentials(username, password)
    checks = Doctor(target, credentials=credentials, ca_file=ca_file, timeout=timeout)
    failed = False
    for step in checks.run():
        click.echo(f"{step.status:<5} {step.name:<20} {step.detail}")
        if step.advice:
            click.echo(f"{'':<5} {'':<20} → {step.advice}")
        failed = failed or step.status == "FAIL"
    click.echo("FAIL: see the first failed step" if failed else "all checks passed")
    raise SystemExit(1 if failed else 0)


GROUPS = (network, doctor)
