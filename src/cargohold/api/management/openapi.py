"""The OpenAPI 3.1 description of the management API (``/api/v1/openapi.json``).

Hand-written, and kept true by tests: every route is described here and every operation
described here is a route (matched by ``operationId``, the handler's name), and answers
are checked against these schemas.
"""

from __future__ import annotations

from cargohold.api.management.openapi_metadata import METADATA_SCHEMAS, metadata_paths
from cargohold.api.management.openapi_notify import (
    advisory_paths,
    delivery_paths,
    pull_paths,
    webhook_paths,
)
from cargohold.api.management.openapi_ops import (
    ERRORS,
    ORG,
    USER,
    W409,
    W,
    op,
    path_param,
)
from cargohold.api.management.openapi_status import STATUS_SCHEMAS, status_paths
from cargohold.api.management.schemas import JSON, SCHEMAS, list_of, ref


def _paths() -> dict[str, JSON]:
    return _accounts() | delivery_paths()


def _accounts() -> dict[str, JSON]:
    return {
        **webhook_paths("/orgs/{org}/webhooks", "org_webhook", "owner"),
        **webhook_paths("/webhooks", "webhook", "admin"),
        "/openapi.json": {
            "get": {
                **op(
                    "openapi",
                    "this document",
                    success="200",
                    result={"type": "object"},
                    errors=(),
                ),
                "security": [],
            }
        },
        "/orgs": {
            "get": op(
                "list_organizations",
                "organizations (an admin sees all, others those they hold a role in)",
                success="200",
                result=list_of("Organization"),
            ),
            "post": op(
                "create_organization",
                "create an organization (admin)",
                success="201",
                result=ref("Named"),
                body="Named",
                errors=W409,
            ),
        },
        "/orgs/{org}": {
            "delete": op(
                "delete_organization",
                "delete an organization, its grants and tokens (admin)",
                success="204",
                params=(ORG,),
            )
        },
        "/orgs/{org}/contact": {
            "put": op(
                "set_contact",
                "set or clear (null) the organization's security contact (owner)",
                success="200",
                result=ref("Organization"),
                body="SecurityContact",
                params=(ORG,),
                errors=W,
            )
        },
        "/orgs/{org}/members/{user}": {
            "put": op(
                "set_member",
                "set a user's role on every repository of the organization (owner)",
                success="200",
                result=ref("Grant"),
                body="Membership",
                params=(ORG, USER),
                errors=W,
            ),
            "delete": op(
                "remove_member",
                "remove a user's roles in the organization (owner)",
                success="204",
                params=(ORG, USER),
            ),
        },
        "/orgs/{org}/grants": {
            "get": op(
                "list_grants",
                "entitlements in the organization (owner)",
                success="200",
                result=list_of("Grant"),
                params=(ORG,),
            ),
            "post": op(
                "add_grant",
                "add an entitlement (owner)",
                success="201",
                result=ref("Grant"),
                body="NewGrant",
                params=(ORG,),
                errors=W,
            ),
        },
        "/orgs/{org}/grants/{grant_id}": {
            "delete": op(
                "remove_grant",
                "remove an entitlement (owner)",
                success="204",
                params=(ORG, path_param("grant_id", "grant id")),
            )
        },
        "/orgs/{org}/tokens": {
            "get": op(
                "list_tokens",
                "pull tokens of the organization, without secrets (owner)",
                success="200",
                result=list_of("PullToken"),
                params=(ORG,),
            ),
            "post": op(
                "create_token",
                "create a pull token; the answer is the only time "
                "its secret is shown (owner)",
                success="201",
                result=ref("CreatedPullToken"),
                body="NewPullToken",
                params=(ORG,),
                errors=W,
            ),
        },
        "/orgs/{org}/tokens/{token_id}": {
            "delete": op(
                "revoke_token",
                "revoke a pull token (owner)",
                success="204",
                params=(ORG, path_param("token_id", "pull token id")),
            )
        },
        "/users": {
            "get": op(
                "list_users", "users (admin)", success="200", result=list_of("User")
            ),
            "post": op(
                "create_user",
                "create a user (admin)",
                success="201",
                result=ref("UserCreated"),
                body="NewUser",
                errors=W409,
            ),
        },
        "/users/{user}": {
            "delete": op(
                "delete_user",
                "delete a user and their roles (admin)",
                success="204",
                params=(USER,),
            )
        },
        "/users/{user}/password": {
            "put": op(
                "set_password",
                "set a password (admin, or the user themself); ends the "
                "user's refresh tokens",
                success="204",
                body="Password",
                params=(USER,),
                errors=W,
            )
        },
        "/users/{user}/email": {
            "put": op(
                "set_email",
                "set or clear (null) a user's email (admin, or the user themself)",
                success="200",
                result=ref("UserEmail"),
                body="Email",
                params=(USER,),
                errors=W,
            )
        },
        **advisory_paths(),
        "/oidc-identities": {
            "get": op(
                "list_identities",
                "CI identities (admin)",
                success="200",
                result=list_of("OidcIdentity"),
            ),
            "post": op(
                "create_identity",
                "trust CI jobs whose ID token matches (admin)",
                success="201",
                result=ref("Named"),
                body="NewOidcIdentity",
                errors=W409,
            ),
        },
        "/oidc-identities/{name}": {
            "delete": op(
                "delete_identity",
                "delete a CI identity and its grants (admin)",
                success="204",
                params=(path_param("name", "identity name"),),
            )
        },
        "/repositories/{name}/settings": {
            "get": op(
                "get_settings",
                "a repository's visibility and starter tags "
                "(owner of its organization)",
                success="200",
                result=ref("RepositorySettings"),
                params=(path_param("name", "repository name, slashes included"),),
            ),
            "put": op(
                "put_settings",
                "change visibility or starter tags (owner)",
                success="200",
                result=ref("RepositorySettings"),
                body="RepositorySettingsUpdate",
                params=(path_param("name", "repository name, slashes included"),),
                errors=W,
            ),
        },
        "/audit": {
            "get": op(
                "list_events",
                "audit events after an id, oldest first (admin)",
                success="200",
                result=list_of("AuditEvent"),
                params=(
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                        "description": "only events after this id",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    },
                    {
                        "name": "actor",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "only events by this subject, e.g. user:alice",
                    },
                ),
            )
        },
    }


def document() -> JSON:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cargohold management API",
            "version": "1",
            "description": (
                "Organizations, users, roles, entitlements, pull tokens, CI "
                "identities, repository visibility, the audit log, webhooks, "
                "advisories, tag history, recorded pulls and image "
                "vulnerabilities. Errors use the "
                "registry's shape, "
                '{"errors": [{code, message, detail}]}. '
                "Refused (403) when the registry runs with auth mode none."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": _paths() | pull_paths() | metadata_paths() | status_paths(),
        "components": {
            "schemas": SCHEMAS | METADATA_SCHEMAS | STATUS_SCHEMAS,
            "responses": {
                f"E{code}": {
                    "description": text,
                    "content": {"application/json": {"schema": ref("Error")}},
                }
                for code, text in ERRORS.items()
            },
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "a user's password, or a pull token (any username)",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "a registry token from /token",
                },
            },
        },
    }
