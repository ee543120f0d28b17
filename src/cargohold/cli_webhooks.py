"""``cargohold webhooks``: an organization's webhooks (``--org``) or the registry-wide
ones, through the management API like the other admin commands."""

from __future__ import annotations

import click

from cargohold.cli_admin_support import Target, call, seg, show, target_options
from cargohold.registry.events import EVENT_TYPES

WEBHOOK_COLUMNS = ("id", "organization", "url", "events", "repositories", "disabled")
DELIVERY_COLUMNS = (
    "id",
    "at",
    "event",
    "attempt",
    "status_code",
    "error",
    "message_id",
)

org_option = click.option(
    "--org",
    metavar="ORG",
    help="ORG's webhooks (owner); default: registry-wide (admin).",
)


def _base(org: str | None) -> str:
    return f"/orgs/{seg(org)}/webhooks" if org else "/webhooks"


def _one(org: str | None, webhook_id: str) -> str:
    return f"{_base(org)}/{seg(webhook_id)}"


def _secret_notice() -> None:
    click.secho(
        "The secret is shown only this once: give it to the receiver now (it verifies "
        "the webhook-signature header). If lost, rotate.",
        fg="yellow",
        err=True,
    )


@click.group("webhooks")
def webhooks() -> None:
    """Webhooks: signed CloudEvents for pushes, pulls, deletes, tags, advisories."""


@webhooks.command("add")
@click.argument("url")
@org_option
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENT_TYPES),
    help="Only these events (repeatable); default all.",
)
@click.option(
    "--repository",
    "repositories",
    multiple=True,
    metavar="GLOB",
    help="Only these repositories (repeatable); default all.",
)
@click.option(
    "--batch-pulls", is_flag=True, help="Pull events in one delivery per batch."
)
@target_options
def webhooks_add(
    target: Target,
    *,
    url: str,
    org: str | None,
    events: tuple[str, ...],
    repositories: tuple[str, ...],
    batch_pulls: bool,
) -> None:
    """Create a webhook delivering to URL and print its secret, once."""
    body = {
        "url": url,
        "events": list(events) or None,
        "repositories": list(repositories) or None,
        "batch_pulls": batch_pulls,
    }
    result = call(target, "POST", _base(org), body=body)
    _secret_notice()
    if target.as_json:
        show(target, result)
    else:
        click.echo(f"created webhook {result['id']} -> {result['url']}")
        click.echo(f"secret: {result['secret']}")


@webhooks.command("list")
@org_option
@target_options
def webhooks_list(target: Target, *, org: str | None) -> None:
    """List webhooks (never their secrets)."""
    show(target, call(target, "GET", _base(org)), columns=WEBHOOK_COLUMNS)


def _by_id(name: str, method: str, suffix: str, helptext: str) -> None:
    def command(target: Target, *, org: str | None, webhook_id: str) -> None:
        result = call(target, method, _one(org, webhook_id) + suffix)
        if method == "DELETE":
            show(target, result, done=f"removed webhook {webhook_id}")
        else:
            show(target, result, columns=WEBHOOK_COLUMNS)

    command.__doc__ = helptext
    webhooks.command(name)(
        click.argument("webhook_id")(org_option(target_options(command)))
    )


_by_id("show", "GET", "", "Show one webhook.")
_by_id("rm", "DELETE", "", "Delete a webhook and its delivery log.")
_by_id("disable", "POST", "/disable", "Stop delivering to a webhook.")
_by_id("enable", "POST", "/enable", "Deliver to a webhook again.")


@webhooks.command("rotate")
@click.argument("webhook_id")
@org_option
@target_options
def webhooks_rotate(target: Target, *, org: str | None, webhook_id: str) -> None:
    """A new secret, printed once; the old one also signs for a while (see
    webhooks.rotation_overlap_hours)."""
    result = call(target, "POST", _one(org, webhook_id) + "/rotate")
    _secret_notice()
    if target.as_json:
        show(target, result)
    else:
        click.echo(f"rotated webhook {webhook_id}; the previous secret signs until "
                   f"{result['previous_secret_until']}")  # fmt: skip
        click.echo(f"secret: {result['secret']}")


@webhooks.command("test")
@click.argument("webhook_id")
@org_option
@target_options
def webhooks_test(target: Target, *, org: str | None, webhook_id: str) -> None:
    """Deliver a ping event now; exit 1 unless the receiver answered 2xx."""
    result = call(target, "POST", _one(org, webhook_id) + "/test")
    show(target, result, columns=("ok", "status_code", "error", "duration_ms"))
    if not result["ok"]:
        raise SystemExit(1)


@webhooks.command("deliveries")
@click.argument("webhook_id")
@org_option
@click.option("--before", type=click.IntRange(min=1), help="Attempts before this id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@target_options
def webhooks_deliveries(
    target: Target, *, org: str | None, webhook_id: str, before: int | None, limit: int
) -> None:
    """The delivery log: every attempt, newest first, with the receiver's status."""
    params: dict[str, str | int] = {"limit": limit}
    if before:
        params["before"] = before
    result = call(target, "GET", _one(org, webhook_id) + "/deliveries", params=params)
    show(target, result, columns=DELIVERY_COLUMNS)
