"""``cargohold signing``: the registry's signing keys and the signing queue.

Local commands on the data directory (like ``cargohold keys``): ``keygen [--rotate]``
makes keys in ``signing.key_dir``; ``public-key`` prints them; ``status`` shows the
keys and the ``sign`` queue; ``resign REPO`` queues every manifest of a repository
for signing with the active key (after a rotation).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cargohold.cli_options import config_option, data_dir_option, load_settings
from cargohold.logs import configure_logging
from cargohold.settings import Settings

if TYPE_CHECKING:
    from cargohold.registry.signing.file_keys import FileKeyStore


def _settings(config: Path | None, data_dir: Path | None) -> Settings:
    settings = load_settings(config, {"data_dir": data_dir} if data_dir else {})
    configure_logging(settings.log)
    return settings


def _keys(settings: Settings) -> FileKeyStore:
    from cargohold.registry.signing.file_keys import (  # noqa: PLC0415
        FileKeyStore,
    )

    return FileKeyStore(settings.signing_key_dir, identity=settings.server.public_host)


@click.group()
def signing() -> None:
    """The registry's signing keys and signing queue."""


@signing.command("keygen")
@config_option
@data_dir_option
@click.option(
    "--rotate",
    is_flag=True,
    help="Replace existing keys: new pushes are signed with the new ones; the old "
    "public keys stay published as retired.",
)
def keygen(config: Path | None, data_dir: Path | None, *, rotate: bool) -> None:
    """Make the signing keys (ECDSA P-256 and OpenPGP) in signing.key_dir."""
    from cargohold.registry.signing.file_keys import (  # noqa: PLC0415
        SigningKeyError,
    )

    settings = _settings(config, data_dir)
    keys = _keys(settings)
    try:
        made = keys.generate(rotate=rotate)
    except SigningKeyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        keys.close()
    for key in made:
        click.echo(f"made {key.kind} key {key.key_id}")
    if rotate:
        click.echo(
            "older keys are retired (still published); run `cargohold signing "
            "resign REPO` to sign existing images with the new keys"
        )


@signing.command("public-key")
@config_option
@data_dir_option
@click.option(
    "--format",
    "output",
    type=click.Choice(["pem", "gpg"]),
    default="pem",
    show_default=True,
    help="pem: the active ECDSA key (cosign); gpg: every OpenPGP key, armored.",
)
def public_key(config: Path | None, data_dir: Path | None, output: str) -> None:
    """Print the registry's public signing key(s)."""
    from cargohold.registry.signing.keys import ECDSA_P256, OPENPGP  # noqa: PLC0415

    keys = _keys(_settings(config, data_dir))
    published = keys.public_keys()
    if output == "pem":
        chosen = [k for k in published if k.kind == ECDSA_P256 and k.state == "active"]
    else:
        chosen = [k for k in published if k.kind == OPENPGP]
    if not chosen:
        msg = "no signing keys: run `cargohold signing keygen` or enable signing"
        raise click.ClickException(msg)
    click.echo("".join(k.public for k in chosen), nl=False)


@signing.command("status")
@config_option
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(config: Path | None, data_dir: Path | None, *, as_json: bool) -> None:
    """The signing keys and the sign queue (pending, done, dead)."""
    from cargohold.api.app import open_services  # noqa: PLC0415

    settings = _settings(config, data_dir)

    async def run() -> dict[str, object]:
        services = open_services(settings)
        try:
            report = await services.signing.status()
        finally:
            await services.close()
        return {
            "enabled": settings.signing.enabled,
            "keys": [
                {
                    "key_id": k.key_id,
                    "kind": k.kind,
                    "state": k.state,
                    "created_at": k.created_at,
                }
                for k in report.keys
            ],
            "formats": report.formats,
            "queue": {s: report.queue.get(s, 0) for s in ("pending", "done", "dead")},
        }

    answer = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"signing: {'enabled' if answer['enabled'] else 'disabled'}")
    keys = answer["keys"]
    assert isinstance(keys, list)  # noqa: S101 - built above
    if not keys:
        click.echo("keys: none")
    for key in keys:
        made = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(key["created_at"]))
        click.echo(f"{key['state']:8} {key['kind']:11} {key['key_id']}  {made}")
    queue = answer["queue"]
    assert isinstance(queue, dict)  # noqa: S101 - built above
    click.echo(
        f"queue: {queue['pending']} pending, {queue['done']} done, "
        f"{queue['dead']} dead (see `cargohold outbox list`)"
    )


@signing.command("resign")
@config_option
@data_dir_option
@click.argument("repository")
def resign(config: Path | None, data_dir: Path | None, repository: str) -> None:
    """Queue every manifest of REPOSITORY for signing with the active keys."""
    from cargohold.api.app import open_services  # noqa: PLC0415
    from cargohold.oci.errors import RegistryError  # noqa: PLC0415
    from cargohold.oci.names import RepositoryName  # noqa: PLC0415

    settings = _settings(config, data_dir)
    if not settings.signing.enabled:
        msg = "signing is not enabled (signing.enabled): nothing would sign"
        raise click.ClickException(msg)
    try:
        name = RepositoryName.parse(repository).value
    except RegistryError as exc:
        raise click.BadParameter(str(exc.detail or exc.message)) from None

    async def run() -> int:
        services = open_services(settings)
        try:
            return await services.signing.resign(name)
        finally:
            await services.close()

    try:
        queued = asyncio.run(run())
    except LookupError as exc:
        raise click.ClickException(f"{exc}: run `cargohold signing keygen`") from None
    click.echo(f"queued {queued} manifest(s) of {name} for signing")
