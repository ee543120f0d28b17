"""``cargohold verify REF``: every signature and attestation of an image, checked.

Runs on the data directory (``--data-dir`` / ``--config``), reading what the registry
stores, and checks each signature (every registered format) and attestation envelope
against the registry's public keys, active and retired, and the image's identity
(``server.public_url``'s host + repository). ``--key`` checks against the ECDSA public
keys in the PEM files given instead (such as the registry's
``/.well-known/cargohold/cosign.pub``; give retired keys too). Exit status 0 only if
at least one registry signature verifies and nothing the registry made fails; 1
otherwise; 2 for bad arguments.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

import click

from cargohold import settings as settings_module
from cargohold.cli_options import config_option, data_dir_option, load_settings
from cargohold.logs import configure_logging
from cargohold.oci.errors import RegistryError
from cargohold.oci.names import RepositoryName


@dataclasses.dataclass(frozen=True, slots=True)
class ImageRef:
    repository: str
    reference: str  # a tag or a digest


def parse_ref(text: str, public_host: str) -> ImageRef:
    """``[host/]repo[:tag|@digest]``; the host, if given, must be this registry's."""
    name, at, digest = text.partition("@")
    tag = None
    if not at:
        head, colon, tail = name.rpartition(":")
        if colon and "/" not in tail:
            name, tag = head, tail
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if first != public_host:
            msg = f"{text!r} names {first}, not this registry ({public_host})"
            raise click.BadParameter(msg, param_hint="REF")
        name = rest
    try:
        repository = RepositoryName.parse(name).value
    except RegistryError as error:
        raise click.BadParameter(str(error.detail), param_hint="REF") from error
    return ImageRef(repository, digest if at else (tag or "latest"))


def _settings(config: Path | None, data_dir: Path | None) -> settings_module.Settings:
    settings = load_settings(config, {"data_dir": data_dir} if data_dir else {})
    if settings.database.url is None and not settings.data_dir.is_dir():
        msg = f"no data directory at {settings.data_dir}: pass --data-dir or --config"
        raise click.UsageError(msg)
    return settings


async def _verify(
    settings: settings_module.Settings, ref: ImageRef, keys: list[Path]
) -> dict[str, object]:
    # Imported here: the server stack stays off `cargohold --help`.
    from cargohold.api.app import open_services  # noqa: PLC0415
    from cargohold.registry.attach import system_access  # noqa: PLC0415
    from cargohold.registry.attestations import AttestationService  # noqa: PLC0415
    from cargohold.registry.signing.public_keys import PublicKeyFiles  # noqa: PLC0415
    from cargohold.registry.verify import VerifyService  # noqa: PLC0415

    try:
        key_store = PublicKeyFiles(keys) if keys else None
    except (OSError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--key") from error
    services = open_services(settings)
    try:
        verifier = services.verifier
        if key_store is None and not services.signing.keys.public_keys():
            msg = (
                f"no signing keys in {settings.signing_key_dir}: "
                "pass --key, or make them with `cargohold signing keygen`"
            )
            raise click.UsageError(msg)
        if key_store is not None:
            host = settings.server.public_host
            attestations = AttestationService(
                services.attacher,
                services.attachments,
                key_store,
                services.auth.accounts.oidc,
                builder=settings.server.public_url or f"https://{host}",
                public_host=host,
            )
            verifier = VerifyService(
                services.attachments,
                [services.cosign],
                attestations,
                key_store,
                public_host=host,
            )
        result = await verifier.verify(system_access(ref.repository), ref.reference)
    finally:
        await services.close()
    return {
        "reference": f"{result.docker_reference}@{result.digest}",
        "verified": result.ok,
        "failures": result.failures,
        "signatures": [dataclasses.asdict(s) for s in result.signatures],
        "attestations": [
            {k: v for k, v in dataclasses.asdict(a).items() if k != "statement"}
            for a in result.attestations
        ],
        "sboms": [dataclasses.asdict(s) for s in result.sboms],
    }


def _print(answer: dict[str, object]) -> None:
    click.echo(str(answer["reference"]))
    rows = [
        ("signature", s["format"], s["signer"], s["key_id"], s["verified"], s["detail"])
        for s in answer["signatures"]  # type: ignore[attr-defined]
    ]
    rows += [
        (
            "attestation",
            a["predicate_type"],
            a["signer"],
            a["key_id"],
            a["verified"],
            f"{a['where']}: {a['detail']}",
        )
        for a in answer["attestations"]  # type: ignore[attr-defined]
    ]
    if not rows:
        click.echo("  no signatures")
    for what, kind, signer, key_id, ok, detail in rows:
        key = f"key {str(key_id)[:12]}" if key_id else "no registry key"
        mark = "ok  " if ok else "FAIL" if signer == "registry" else "----"
        click.echo(f"  {mark} {what} {kind} ({signer}, {key}): {detail}")
    for sbom in answer["sboms"]:  # type: ignore[attr-defined]
        click.echo(
            f"  ---- sbom {sbom['media_type']} (client, unsigned): "
            f"{sbom['where']}: {sbom['digest']}"
        )
    click.echo("verified" if answer["verified"] else "NOT verified")


@click.command("verify")
@click.argument("ref")
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Check against this ECDSA P-256 public key (PEM) instead of the registry's "
    "keys; repeat for retired keys.",
)
@config_option
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def verify(
    ref: str,
    *,
    keys: tuple[Path, ...],
    config: Path | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Check every signature and attestation of REF ([host/]repo[:tag|@digest])."""
    settings = _settings(config, data_dir)
    configure_logging(dataclasses.replace(settings.log, level="error"))
    image = parse_ref(ref, settings.server.public_host)
    try:
        answer = asyncio.run(_verify(settings, image, list(keys)))
    except RegistryError as error:
        click.secho(f"error: {error.detail or error.message}", fg="red", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
    else:
        _print(answer)
    sys.exit(0 if answer["verified"] else 1)
