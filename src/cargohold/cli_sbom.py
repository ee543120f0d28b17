"""``cargohold sbom REF``: what the registry found in an image
(``GET /api/v1/repositories/{name}/manifests/{reference}/sbom``), as SPDX 2.3 JSON,
CycloneDX 1.6 JSON or a table; locally on the data directory (as the system
administrator) or remotely with ``--registry``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from cargohold.cli_admin_support import Target, call, table, target_options

COLUMNS = ("ecosystem", "name", "version", "purl", "path")


def split_reference(ref: str) -> tuple[str, str]:
    """``name@digest`` or ``name[:tag]`` (``latest`` if none): (name, reference)."""
    if "@" in ref:
        name, _, digest = ref.partition("@")
        return name, digest
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return ref, "latest"


def _rows(document: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for component in document.get("components", []):
        properties = {p["name"]: p["value"] for p in component.get("properties", [])}
        rows.append(
            {
                "ecosystem": properties.get("cargohold:ecosystem", ""),
                "name": component.get("name", ""),
                "version": component.get("version", ""),
                "purl": component.get("purl", ""),
                "path": properties.get("cargohold:path", ""),
            }
        )
    return rows


@click.command("sbom")
@click.argument("ref")
@click.option(
    "--format",
    "output",
    type=click.Choice(["spdx", "cyclonedx", "table"]),
    default="table",
    show_default=True,
    help="SPDX 2.3 JSON, CycloneDX 1.6 JSON, or a table of the packages.",
)
@target_options
def sbom(target: Target, /, *, ref: str, output: str) -> None:
    """The packages in image REF (repo@sha256:<hex> or repo:tag)."""
    name, reference = split_reference(ref)
    if not name or not reference:
        raise click.BadParameter(f"{ref!r} is not repo@digest or repo:tag")
    path = (
        f"/repositories/{quote(name, safe='/')}/manifests/"
        f"{quote(reference, safe=':')}/sbom"
    )
    document = call(
        target,
        "GET",
        path,
        params={"format": "cyclonedx" if output == "table" else output},
    )
    if output != "table" or target.as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    rows = _rows(document)
    click.echo(table(rows, COLUMNS) if rows else "(no packages found)")
