"""Administrative commands: users, orgs, members, grants, tokens, oidc, repos, audit.

Each command is one management API call (``/api/v1``), made through a ``Backend``
(``cargohold.api.management.client``):

* **local** (the default) opens the data directory (``--data-dir``/``--config``, as
  ``cargohold serve`` does) and acts as the system administrator ``user:<system>``,
  with no credentials. Access to the data directory is administrative: whoever can
  write it can change anything in the registry anyway, so guard it like the registry's
  own files. It works in every auth mode, e.g. to create users before turning auth on.
* **remote** (``--registry URL``) calls a running registry as ``--username``, with the
  password (or a pull token) from ``--password-stdin`` or ``CARGOHOLD_PASSWORD``.

Both run the same handlers (the local backend serves them in-process), so they check,
answer and audit alike. Output is a table, or the API's JSON with ``--json``. Passwords
for ``users add`` and ``users passwd`` come from ``CARGOHOLD_NEW_PASSWORD`` or a prompt.
"""

from __future__ import annotations

from urllib.parse import quote

import click

from cargohold.auth.policy import ROLES
from cargohold.cli_admin_support import (
    AUDIT_COLUMNS,
    GRANT_COLUMNS,
    OIDC_COLUMNS,
    REPO_COLUMNS,
    TOKEN_COLUMNS,
    USER_COLUMNS,
    VISIBILITIES,
    Target,
    call,
    new_password,
    parse_claims,
    seg,
    show,
    target_options,
)

role_argument = click.argument("role", type=click.Choice(ROLES))
tag_option = click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="GLOB",
    help="Only these tags (repeatable); default all.",
)


@click.group("users")
def users() -> None:
    """Users and their passwords."""


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@target_options
def users_add(target: Target, *, name: str, admin: bool) -> None:
    """Create a user (password from CARGOHOLD_NEW_PASSWORD or a prompt)."""
    body = {"name": name, "password": new_password(), "admin": admin}
    result = call(target, "POST", "/users", body=body)
    show(
        target,
        result,
        done=f"created user {name}" + (" (administrator)" if admin else ""),
    )


@users.command("list")
@target_options
def users_list(target: Target) -> None:
    """List users."""
    show(target, call(target, "GET", "/users"), columns=USER_COLUMNS)


@users.command("passwd")
@click.argument("name")
@target_options
def users_passwd(target: Target, *, name: str) -> None:
    """Set a user's password; their refresh tokens stop working."""
    body = {"password": new_password()}
    show(
        target,
        call(target, "PUT", f"/users/{seg(name)}/password", body=body),
        done=f"password of {name} changed",
    )


@users.command("email")
@click.argument("name")
@click.argument("address", required=False)
@target_options
def users_email(target: Target, *, name: str, address: str | None) -> None:
    """Set a user's email (advisories reach them there); no ADDRESS clears it."""
    body = {"email": address}
    show(
        target,
        call(target, "PUT", f"/users/{seg(name)}/email", body=body),
        done=f"email of {name} " + (f"set to {address}" if address else "cleared"),
    )


@users.command("remove")
@click.argument("name")
@target_options
def users_remove(target: Target, *, name: str) -> None:
    """Delete a user and their roles."""
    show(
        target,
        call(target, "DELETE", f"/users/{seg(name)}"),
        done=f"removed user {name}",
    )


@click.group("orgs")
def orgs() -> None:
    """Organizations (the first component of repository names)."""


@orgs.command("add")
@click.argument("name")
@target_options
def orgs_add(target: Target, *, name: str) -> None:
    """Create an organization."""
    show(
        target,
        call(target, "POST", "/orgs", body={"name": name}),
        done=f"created organization {name}",
    )


@orgs.command("list")
@target_options
def orgs_list(target: Target) -> None:
    """List organizations (all for an administrator; else those you hold a role in)."""
    show(target, call(target, "GET", "/orgs"), columns=("name", "security_contact"))


@orgs.command("contact")
@click.argument("name")
@click.argument("address", required=False)
@target_options
def orgs_contact(target: Target, *, name: str, address: str | None) -> None:
    """Set the security contact (reaches its tokens' and CI's people); none clears."""
    body = {"security_contact": address}
    show(
        target,
        call(target, "PUT", f"/orgs/{seg(name)}/contact", body=body),
        done=f"security contact of {name} "
        + (f"set to {address}" if address else "cleared"),
    )


@orgs.command("remove")
@click.argument("name")
@target_options
def orgs_remove(target: Target, *, name: str) -> None:
    """Delete an organization, its grants and its pull tokens."""
    show(
        target,
        call(target, "DELETE", f"/orgs/{seg(name)}"),
        done=f"removed organization {name}",
    )


@click.group("members")
def members() -> None:
    """Members: a user's role on every repository of an organization."""


@members.command("set")
@click.argument("org")
@click.argument("user")
@role_argument
@target_options
def members_set(target: Target, *, org: str, user: str, role: str) -> None:
    """Give USER the ROLE in ORG (replacing their current role)."""
    result = call(
        target, "PUT", f"/orgs/{seg(org)}/members/{seg(user)}", body={"role": role}
    )
    show(target, result, done=f"{user} is {role} in {org}")


@members.command("remove")
@click.argument("org")
@click.argument("user")
@target_options
def members_remove(target: Target, *, org: str, user: str) -> None:
    """Remove all of USER's roles in ORG."""
    show(
        target,
        call(target, "DELETE", f"/orgs/{seg(org)}/members/{seg(user)}"),
        done=f"removed {user} from {org}",
    )


@click.group("grants")
def grants() -> None:
    """Entitlements: a role on repositories matching a glob, maybe only some tags."""


@grants.command("add")
@click.argument("org")
@click.argument("principal")
@click.argument("repository")
@role_argument
@tag_option
@target_options
def grants_add(
    target: Target,
    *,
    org: str,
    principal: str,
    repository: str,
    role: str,
    tags: tuple[str, ...],
) -> None:
    """Give PRINCIPAL (user:NAME, token:ID, oidc:NAME) ROLE on REPOSITORY (a glob)."""
    body = {
        "principal": principal,
        "repository": repository,
        "role": role,
        "tags": list(tags) or None,
    }
    result = call(target, "POST", f"/orgs/{seg(org)}/grants", body=body)
    show(target, result, columns=GRANT_COLUMNS)


@grants.command("list")
@click.argument("org")
@target_options
def grants_list(target: Target, *, org: str) -> None:
    """List the entitlements in ORG (members and pull tokens included)."""
    show(target, call(target, "GET", f"/orgs/{seg(org)}/grants"), columns=GRANT_COLUMNS)


@grants.command("remove")
@click.argument("org")
@click.argument("grant_id", type=int)
@target_options
def grants_remove(target: Target, *, org: str, grant_id: int) -> None:
    """Remove the entitlement GRANT_ID from ORG."""
    show(
        target,
        call(target, "DELETE", f"/orgs/{seg(org)}/grants/{grant_id}"),
        done=f"removed grant {grant_id}",
    )


@click.group("tokens")
def tokens() -> None:
    """Pull tokens: machine credentials of an organization."""


@tokens.command("create")
@click.argument("org")
@click.option("--description", "-d", required=True, help="What the token is for.")
@click.option("--role", type=click.Choice(ROLES), default="puller", show_default=True)
@click.option("--repository", metavar="GLOB", help="Only these repositories of ORG.")
@tag_option
@click.option(
    "--expires-in-days",
    type=click.FloatRange(min=0, min_open=True),
    help="Default: never.",
)
@target_options
def tokens_create(
    target: Target,
    *,
    org: str,
    description: str,
    role: str,
    repository: str | None,
    tags: tuple[str, ...],
    expires_in_days: float | None,
) -> None:
    """Create a pull token and print its secret, once."""
    body = {
        "description": description,
        "role": role,
        "repository": repository,
        "tags": list(tags) or None,
        "expires_in_days": expires_in_days,
    }
    result = call(target, "POST", f"/orgs/{seg(org)}/tokens", body=body)
    click.secho(
        "The secret is shown only this once: store it now. Use it as the "
        "password with any username; if lost, revoke the token and create "
        "another.",
        fg="yellow",
        err=True,
    )
    if target.as_json:
        show(target, result)
    else:
        click.echo(f"created pull token {result['id']} in {org} ({role})")
        click.echo(f"secret: {result['secret']}")


@tokens.command("list")
@click.argument("org")
@target_options
def tokens_list(target: Target, *, org: str) -> None:
    """List ORG's pull tokens (never their secrets)."""
    show(target, call(target, "GET", f"/orgs/{seg(org)}/tokens"), columns=TOKEN_COLUMNS)


@tokens.command("revoke")
@click.argument("org")
@click.argument("token_id")
@target_options
def tokens_revoke(target: Target, *, org: str, token_id: str) -> None:
    """Revoke a pull token at once."""
    show(
        target,
        call(target, "DELETE", f"/orgs/{seg(org)}/tokens/{seg(token_id)}"),
        done=f"revoked pull token {token_id}",
    )


@click.group("oidc")
def oidc() -> None:
    """CI identities: jobs that log in with their OIDC ID token."""


@oidc.command("add")
@click.argument("name")
@click.option("--issuer", required=True, help="Issuer URL, e.g. the CI's OIDC issuer.")
@click.option("--audience", required=True, help="The audience the job asks for.")
@click.option("--subject", required=True, help="Glob the token's sub must match.")
@click.option(
    "--claim",
    "claims",
    multiple=True,
    metavar="CLAIM=GLOB",
    help="Another claim that must match (repeatable).",
)
@target_options
def oidc_add(
    target: Target,
    *,
    name: str,
    issuer: str,
    audience: str,
    subject: str,
    claims: tuple[str, ...],
) -> None:
    """Trust CI jobs whose ID tokens match (then give oidc:NAME roles: grants add)."""
    body = {
        "name": name,
        "issuer": issuer,
        "audience": audience,
        "subject": subject,
        "claims": parse_claims(claims),
    }
    show(
        target,
        call(target, "POST", "/oidc-identities", body=body),
        done=f"created identity {name} (principal oidc:{name})",
    )


@oidc.command("list")
@target_options
def oidc_list(target: Target) -> None:
    """List CI identities."""
    show(target, call(target, "GET", "/oidc-identities"), columns=OIDC_COLUMNS)


@oidc.command("remove")
@click.argument("name")
@target_options
def oidc_remove(target: Target, *, name: str) -> None:
    """Delete a CI identity and its grants."""
    show(
        target,
        call(target, "DELETE", f"/oidc-identities/{seg(name)}"),
        done=f"removed identity {name}",
    )


@click.group("repos")
def repos() -> None:
    """Repository visibility and starter tags (what anyone may pull when public)."""


@repos.command("set")
@click.argument("name")
@click.option("--visibility", type=click.Choice(VISIBILITIES))
@click.option(
    "--starter-tags",
    metavar="GLOBS",
    help="Comma-separated tags anyone may pull when public (replaces the list; "
    "'' for none).",
)
@target_options
def repos_set(
    target: Target, *, name: str, visibility: str | None, starter_tags: str | None
) -> None:
    """Change a repository's settings."""
    if visibility is None and starter_tags is None:
        raise click.UsageError("give --visibility and/or --starter-tags")
    tags = None
    if starter_tags is not None:
        tags = [tag.strip() for tag in starter_tags.split(",") if tag.strip()]
    body = {"visibility": visibility, "starter_tags": tags}
    result = call(
        target, "PUT", f"/repositories/{quote(name, safe='/')}/settings", body=body
    )
    show(target, result, columns=REPO_COLUMNS)


@repos.command("show")
@click.argument("name")
@target_options
def repos_show(target: Target, *, name: str) -> None:
    """Show a repository's settings (starter tags '-': the registry's default)."""
    result = call(target, "GET", f"/repositories/{quote(name, safe='/')}/settings")
    show(target, result, columns=REPO_COLUMNS)


@click.group("audit")
def audit() -> None:
    """The audit log."""


@audit.command("list")
@click.option("--after", type=click.IntRange(min=0), default=0, help="After this id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--actor", metavar="SUBJECT", help="Only this actor, e.g. user:alice.")
@target_options
def audit_list(target: Target, *, after: int, limit: int, actor: str | None) -> None:
    """List audit events, oldest first."""
    params: dict[str, str | int] = {"after": after, "limit": limit}
    if actor:
        params["actor"] = actor
    show(target, call(target, "GET", "/audit", params=params), columns=AUDIT_COLUMNS)


from cargohold.cli_webhooks import webhooks  # noqa: E402 - after its own groups

GROUPS = (users, orgs, members, grants, tokens, oidc, repos, audit, webhooks)
