"""Every management route, relative to ``PREFIX``; all but the document authenticate.

Handlers take the authenticated caller as an argument, so none can forget to ask for it:
``build_routes`` wraps each one with the ``Authenticate`` it is given (credentials from
the request for the server; a fixed principal for the local admin CLI).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cargohold.api.management import (
    advisories,
    audit,
    grants,
    image_metadata,
    members,
    notices,
    oidc,
    openapi,
    organizations,
    outbox,
    pulls,
    repositories,
    sbom,
    status,
    tags,
    tokens,
    users,
    vulns,
    webhooks,
)
from cargohold.api.management.auth import Authenticate, from_credentials, or_anonymous
from cargohold.auth.policy import Principal

PREFIX = "/api/v1"

Handler = Callable[[Request, Principal], Awaitable[Response]]

OPERATIONS: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/orgs", organizations.list_organizations),
    ("POST", "/orgs", organizations.create_organization),
    ("DELETE", "/orgs/{org}", organizations.delete_organization),
    ("PUT", "/orgs/{org}/contact", organizations.set_contact),
    ("PUT", "/orgs/{org}/members/{user}", members.set_member),
    ("DELETE", "/orgs/{org}/members/{user}", members.remove_member),
    ("GET", "/orgs/{org}/grants", grants.list_grants),
    ("POST", "/orgs/{org}/grants", grants.add_grant),
    ("DELETE", "/orgs/{org}/grants/{grant_id:int}", grants.remove_grant),
    ("GET", "/orgs/{org}/tokens", tokens.list_tokens),
    ("POST", "/orgs/{org}/tokens", tokens.create_token),
    ("DELETE", "/orgs/{org}/tokens/{token_id}", tokens.revoke_token),
    ("GET", "/users", users.list_users),
    ("POST", "/users", users.create_user),
    ("DELETE", "/users/{user}", users.delete_user),
    ("PUT", "/users/{user}/password", users.set_password),
    ("PUT", "/users/{user}/email", users.set_email),
    ("GET", "/oidc-identities", oidc.list_identities),
    ("POST", "/oidc-identities", oidc.create_identity),
    ("DELETE", "/oidc-identities/{name}", oidc.delete_identity),
    ("GET", "/repositories/{name:path}/settings", repositories.get_settings),
    ("PUT", "/repositories/{name:path}/settings", repositories.put_settings),
    ("GET", "/repositories/{name:path}/tags/{tag}/history", tags.tag_history),
    (
        "GET",
        "/repositories/{name:path}/manifests/{reference}/vulnerabilities",
        vulns.image_vulnerabilities,
    ),
    ("GET", "/repositories/{name:path}/manifests/{reference}/sbom", sbom.get_sbom),
    (
        "GET",
        "/repositories/{name:path}/manifests/{reference}/metadata",
        image_metadata.get_metadata,
    ),
    ("GET", "/audit", audit.list_events),
    *webhooks.operations("/orgs/{org}/webhooks", webhooks.ORG),
    *webhooks.operations("/webhooks", webhooks.WIDE),
    ("GET", "/advisories", advisories.list_advisories),
    ("POST", "/advisories", advisories.publish_advisory),
    ("GET", "/advisories/{advisory}", advisories.get_advisory),
    ("PATCH", "/advisories/{advisory}", advisories.update_advisory),
    ("GET", "/advisories/{advisory}/revisions", advisories.list_revisions),
    ("GET", "/advisories/{advisory}/affected", advisories.list_affected),
    ("GET", "/pulls", pulls.list_pulls),
    ("GET", "/me", users.whoami),
    ("GET", "/me/pulls", pulls.my_pulls),
    ("GET", "/notices", notices.list_notices),
    ("POST", "/notices/read", notices.read_all_notices),
    ("POST", "/notices/{notice_id:int}/read", notices.read_notice),
    ("GET", "/outbox", outbox.list_outbox),
    ("POST", "/outbox/{message_id:int}/retry", outbox.retry_outbox),
    *status.OPERATIONS,
)


async def openapi_document(_request: Request) -> Response:
    return JSONResponse(openapi.document())


# Reads that follow an image's tier: callers without credentials act as anonymous and
# get what anonymous may pull (starter tags of public repositories), nothing else.
ANONYMOUS_READS = frozenset({"get_sbom", "get_metadata", "image_vulnerabilities"})


def _guarded(
    handler: Handler, authenticate: Authenticate
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, await authenticate(request))

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def build_routes(authenticate: Authenticate = from_credentials) -> list[BaseRoute]:
    """The routes, named after their handlers (the ``operationId`` in the document)."""
    return [
        Route("/openapi.json", openapi_document, methods=["GET"], name="openapi"),
        *(
            Route(
                path,
                _guarded(
                    handler,
                    or_anonymous(authenticate)
                    if handler.__name__ in ANONYMOUS_READS
                    else authenticate,
                ),
                methods=[method],
                name=handler.__name__,
            )
            for method, path, handler in OPERATIONS
        ),
    ]
