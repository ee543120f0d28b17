"""Advisory and tag-history commands, each one management API call (see cli_admin).

``cargohold advisories add FILE`` publishes a document (JSON, or TOML by the file's
``.toml`` suffix; ``-`` reads JSON from standard input) or one built from flags;
``update ID`` sends only the fields given (a partial document file or flags) and
publishes the next revision. ``tags history REPO:TAG`` lists a tag's moves.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from cargohold.cli_admin_support import Target, call, seg, show, target_options

ADVISORY_COLUMNS = ("id", "revision", "severity", "state", "title", "fixed_in")
AFFECTED_COLUMNS = ("identity", "organization", "contact", "last_pull", "digests")
HISTORY_COLUMNS = ("at", "from", "to", "actor")
REVISION_COLUMNS = ("revision", "at", "actor")


def _load(path: str) -> dict[str, Any]:
    try:
        if path == "-":
            data: object = json.loads(sys.stdin.read())
        elif path.endswith(".toml"):
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        else:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from None
    if not isinstance(data, dict):
        raise click.BadParameter("the document must be an object", param_hint="FILE")
    return data


def _document(path: str | None, flags: dict[str, Any]) -> dict[str, Any]:
    document = _load(path) if path else {}
    repository = flags.pop("repository")
    digests, tags = flags.pop("digests"), flags.pop("tags")
    if repository or digests or tags:
        if not repository:
            raise click.BadParameter("needs --repository", param_hint="--digest/--tag")
        entry = {"repository": repository, "digests": list(digests), "tags": list(tags)}
        document["affected"] = [*document.get("affected", []), entry]
    aliases = flags.pop("aliases")
    if aliases:
        document["aliases"] = list(aliases)
    document |= {k: v for k, v in flags.items() if v is not None}
    return document


def _advisory_options(func: Any) -> Any:
    options = (
        click.option("--title"),
        click.option(
            "--severity", type=click.Choice(["critical", "high", "medium", "low"])
        ),
        click.option(
            "--state",
            type=click.Choice(["draft", "upcoming", "current", "resolved"]),
        ),
        click.option("--description", help="Markdown."),
        click.option(
            "--repository", help="An affected repository (with --digest/--tag)."
        ),
        click.option("--digest", "digests", multiple=True, help="Affected digest."),
        click.option(
            "--tag", "tags", multiple=True, metavar="GLOB", help="Affected tags."
        ),
        click.option("--fixed-in", "fixed_in", metavar="REF"),
        click.option("--alias", "aliases", multiple=True, help="CVE/GHSA id."),
        click.option("--url"),
    )
    for option in reversed(options):
        func = option(func)
    return func


@click.group("advisories")
def advisories() -> None:
    """Security advisories and deprecation notices for pulled images."""


@advisories.command("add")
@click.argument("path", metavar="[FILE]", required=False)
@click.option("--id", "ident", help="The advisory id (or in FILE).")
@_advisory_options
@target_options
def advisories_add(
    target: Target, *, path: str | None, ident: str | None, **flags: Any
) -> None:
    """Publish an advisory (revision 1) from FILE (JSON or TOML) and/or flags."""
    document = _document(path, flags)
    if ident:
        document["id"] = ident
    show(
        target,
        call(target, "POST", "/advisories", body=document),
        columns=ADVISORY_COLUMNS,
    )


@advisories.command("update")
@click.argument("ident", metavar="ID")
@click.argument("path", metavar="[FILE]", required=False)
@_advisory_options
@target_options
def advisories_update(
    target: Target, *, ident: str, path: str | None, **flags: Any
) -> None:
    """Publish the next revision with the fields in FILE and/or flags changed."""
    changes = _document(path, flags)
    result = call(target, "PATCH", f"/advisories/{seg(ident)}", body=changes)
    show(target, result, columns=ADVISORY_COLUMNS)


@advisories.command("list")
@target_options
def advisories_list(target: Target) -> None:
    """List the advisories you may see."""
    result = call(target, "GET", "/advisories")
    show(
        target,
        result if target.as_json else result["advisories"],
        columns=ADVISORY_COLUMNS,
    )


@advisories.command("show")
@click.argument("ident", metavar="ID")
@click.option("--revisions", is_flag=True, help="List every revision instead.")
@click.option("--affected", is_flag=True, help="Who pulled it (administrators).")
@target_options
def advisories_show(
    target: Target, *, ident: str, revisions: bool, affected: bool
) -> None:
    """Show an advisory (or its revisions, or who it affects)."""
    if affected:
        result = call(target, "GET", f"/advisories/{seg(ident)}/affected")
        rows = result if target.as_json else result["identities"]
        show(target, rows, columns=AFFECTED_COLUMNS)
    elif revisions:
        result = call(target, "GET", f"/advisories/{seg(ident)}/revisions")
        show(
            target,
            result if target.as_json else result["revisions"],
            columns=REVISION_COLUMNS,
        )
    else:
        result = call(target, "GET", f"/advisories/{seg(ident)}")
        if target.as_json:
            show(target, result)
        else:
            show(target, result, columns=ADVISORY_COLUMNS)
            for digest in result.get("digests", []):
                via = f" (tag {digest['via_tag']})" if digest["via_tag"] else ""
                click.echo(f"  {digest['repository']}@{digest['digest']}{via}")


@click.group("tags")
def tags() -> None:
    """Tags of repositories."""


@tags.command("history")
@click.argument("reference", metavar="REPO:TAG")
@target_options
def tags_history(target: Target, *, reference: str) -> None:
    """Every move of a tag, newest first (who may pull the repository)."""
    repository, sep, tag = reference.rpartition(":")
    if not sep or not repository or not tag or "/" in tag:
        raise click.BadParameter("expected REPO:TAG", param_hint="REPO:TAG")
    path = f"/repositories/{quote(repository, safe='/')}/tags/{seg(tag)}/history"
    result = call(target, "GET", path)
    show(
        target, result if target.as_json else result["history"], columns=HISTORY_COLUMNS
    )


GROUPS = (advisories, tags)
