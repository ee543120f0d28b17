"""Commands for notices and the outbox: ``cargohold notices``, ``cargohold outbox``.

Like the admin commands (``cli_admin``), each is one management API call, locally on
the data directory or on a running registry (``--registry URL``). ``notices`` reads the
caller's own inbox, so it is meant for ``--registry`` with your own credentials (a
user, or a pull token as password); locally it reads the system administrator's.
"""

from __future__ import annotations

import click

from cargohold.cli_admin_support import Target, call, show, target_options

NOTICE_COLUMNS = (
    "id",
    "advisory",
    "severity",
    "state",
    "title",
    "fixed_in",
    "read",
    "created_at",
)
OUTBOX_COLUMNS = (
    "id",
    "channel",
    "key",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
)


@click.group("notices", invoke_without_command=True)
@click.option("--unread", is_flag=True, help="Only notices not read yet.")
@target_options
def notices(target: Target, *, unread: bool) -> None:
    """Your advisory notices, newest first (``read`` marks them read)."""
    if click.get_current_context().invoked_subcommand is not None:
        return
    params: dict[str, str | int] = {"unread": "true"} if unread else {}
    result = call(target, "GET", "/notices", params=params)
    if target.as_json:
        show(target, result)
        return
    rows = [
        notice
        | {
            "fixed_in": notice["fixed_in"] or "",
            "read": "yes" if notice["read"] else "no",
        }
        for notice in result["notices"]
    ]
    show(target, rows, columns=NOTICE_COLUMNS)


@notices.command("read")
@click.argument("notice_id", metavar="ID", type=click.IntRange(min=1), required=False)
@click.option("--all", "every", is_flag=True, help="Mark every notice read.")
@target_options
def notices_read(target: Target, *, notice_id: int | None, every: bool) -> None:
    """Mark notice ID (or, with --all, every notice) read."""
    if every == (notice_id is not None):
        raise click.UsageError("give a notice ID or --all (one of them)")
    path = "/notices/read" if every else f"/notices/{notice_id}/read"
    result = call(target, "POST", path)
    show(target, result, done=f"marked {result['read']} notice(s) read")


@click.group("outbox")
def outbox() -> None:
    """The outbox: messages waiting for delivery and dead letters (admin)."""


@outbox.command("list")
@click.option(
    "--state",
    type=click.Choice(["pending", "dead", "done"]),
    help="Only this state (default: every state).",
)
@click.option("--after", type=click.IntRange(min=0), default=0, help="After this id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@target_options
def outbox_list(target: Target, *, state: str | None, after: int, limit: int) -> None:
    """List outbox messages by id."""
    params: dict[str, str | int] = {"after": after, "limit": limit}
    if state:
        params["state"] = state
    result = call(target, "GET", "/outbox", params=params)
    if target.as_json:
        show(target, result)
        return
    show(target, result["messages"], columns=OUTBOX_COLUMNS)


@outbox.command("retry")
@click.argument("message_id", metavar="ID", type=click.IntRange(min=1))
@target_options
def outbox_retry(target: Target, *, message_id: int) -> None:
    """Deliver dead message ID again, now."""
    result = call(target, "POST", f"/outbox/{message_id}/retry")
    show(target, result, done=f"message {message_id} is pending again")


GROUPS = (notices, outbox)
