"""``/orgs/{org}/tokens``: pull tokens, machine credentials of an organization.

The secret is in the answer to the create request only; listings show neither secrets
nor their hashes.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from cargohold.api.management import views
from cargohold.api.management.body import json_fields
from cargohold.api.management.common import admin, client, no_content, reply
from cargohold.auth.policy import ROLES, Principal
from cargohold.registry.admin import MAX_PATTERN_WILDCARDS, InvalidRequest

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

MAX_DAYS = 3650.0


def _within(organization: str, repository: str | None) -> str | None:
    # AdminService.create_pull_token does not check the pattern (add_grant does);
    # without this, an owner could mint a token for every organization's repositories.
    if repository is not None and (
        not fnmatchcase(repository, f"{organization}/*")
        or repository.count("*") > MAX_PATTERN_WILDCARDS
    ):
        raise InvalidRequest(f"repository must be a pattern under {organization}/")
    return repository


async def list_tokens(request: Request, actor: Principal) -> Response:
    records = await admin(request).pull_tokens(actor, request.path_params["org"])
    return reply([views.pull_token(record) for record in records])


async def create_token(request: Request, actor: Principal) -> Response:
    organization = request.path_params["org"]
    body = await json_fields(
        request, "description", "role", "repository", "tags", "expires_in_days"
    )
    created = await admin(request).create_pull_token(
        actor,
        organization,
        description=body.text("description", max_length=255),
        role=body.optional_choice("role", ROLES) or "puller",
        repository=_within(
            organization, body.optional_text("repository", max_length=255)
        ),
        tags=body.patterns("tags"),
        expires_in_days=body.positive_number("expires_in_days", maximum=MAX_DAYS),
        client=client(request),
    )
    return reply(
        views.pull_token(created.record) | {"secret": created.secret}, status=201
    )


async def revoke_token(request: Request, actor: Principal) -> Response:
    await admin(request).revoke_pull_token(
        actor,
        request.path_params["org"],
        request.path_params["token_id"],
        client=client(request),
    )
    return no_content()
