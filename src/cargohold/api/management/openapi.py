"""The OpenAPI 3.1 description of the management API (``/api/v1/openapi.json``).

Hand-written, and kept true by tests: every route is described here and every operation
described here is a route (matched by ``operationId``, the handler's name), and answers
are checked against these schemas.
"""

from __future__ import annotations

from cargohold.api.management.body import MAX_BODY
from cargohold.api.management.schemas import JSON, SCHEMAS, list_of, ref

_ERRORS = {
    "400": "invalid request: malformed body, wrong type or value",
    "401": "no or wrong credentials (answered with a Basic challenge)",
    "403": "not allowed to this caller, or auth mode is none",
    "404": "no such object",
    "409": "already exists",
    "413": f"body larger than {MAX_BODY} bytes",
    "415": "body not sent as application/json",
    "429": "too many failed logins",
}
_READ_ERRORS = ("400", "401", "403", "404", "429")
_WRITE_ERRORS = ("400", "401", "403", "404", "413", "415", "429")


_INTEGERS = {"grant_id", "notice_id", "message_id"}


def _path_param(name: str, description: str) -> JSON:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer"} if name in _INTEGERS else {"type": "string"},
    }


def _op(
    operation_id: str,
    summary: str,
    *,
    success: str,
    result: JSON | None = None,
    body: str | None = None,
    params: tuple[JSON, ...] = (),
    errors: tuple[str, ...] = _READ_ERRORS,
) -> JSON:
    answer: JSON = {"description": summary}
    if result is not None:
        answer["content"] = {"application/json": {"schema": result}}
    operation: JSON = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {success: answer}
        | {code: {"$ref": f"#/components/responses/E{code}"} for code in errors},
    }
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(body)}},
        }
    return operation


_ORG = _path_param("org", "organization name")
_USER = _path_param("user", "user name")
_PAGE = (
    {
        "name": "after",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "default": 0},
        "description": "only messages after this id",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
)
_W = _WRITE_ERRORS
_W409 = (*_WRITE_ERRORS, "409")


def _webhook_paths(prefix: str, suffix: str, who: str) -> dict[str, JSON]:
    """The operations on one scope's webhooks (``suffix`` of the operation ids)."""
    params: tuple[JSON, ...] = (_ORG,) if prefix.startswith("/orgs") else ()
    one = (*params, _path_param("webhook_id", "webhook id"))
    item = prefix + "/{webhook_id}"

    def action(verb: str, summary: str, result: JSON) -> JSON:
        return {
            "post": _op(
                f"{verb}_{suffix}",
                f"{summary} ({who})",
                success="200",
                result=result,
                params=one,
            )
        }

    return {
        prefix: {
            "get": _op(
                f"list_{suffix}",
                f"webhooks, without secrets ({who})",
                success="200",
                result=list_of("Webhook"),
                params=params,
            ),
            "post": _op(
                f"create_{suffix}",
                f"create a webhook; the answer is the only time its secret is shown "
                f"({who})",
                success="201",
                result=ref("WebhookWithSecret"),
                body="NewWebhook",
                params=params,
                errors=_W,
            ),
        },
        item: {
            "get": _op(
                f"get_{suffix}",
                f"one webhook ({who})",
                success="200",
                result=ref("Webhook"),
                params=one,
            ),
            "delete": _op(
                f"delete_{suffix}",
                f"delete a webhook and its delivery log ({who})",
                success="204",
                params=one,
            ),
        },
        item + "/disable": action("disable", "stop delivering", ref("Webhook")),
        item + "/enable": action("enable", "deliver again", ref("Webhook")),
        item + "/rotate": action(
            "rotate",
            "a new secret, shown once; the previous one signs alongside it for "
            "webhooks.rotation_overlap_hours",
            ref("WebhookWithSecret"),
        ),
        item + "/test": action(
            "test",
            "deliver a ping event now and report how it went",
            ref("WebhookTest"),
        ),
        item + "/deliveries": {
            "get": _op(
                f"deliveries_{suffix}",
                f"delivery attempts, newest first ({who})",
                success="200",
                result=list_of("WebhookDelivery"),
                params=(
                    *one,
                    {
                        "name": "before",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0},
                        "description": "only attempts with a smaller id (next page)",
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
                ),
            )
        },
    }


_ADVISORY = _path_param("advisory", "advisory id")


def _advisory_paths() -> dict[str, JSON]:
    return {
        "/advisories": {
            "get": _op(
                "list_advisories",
                "advisories (admins: all; others: those covering a repository "
                "they may pull)",
                success="200",
                result=ref("Advisories"),
            ),
            "post": _op(
                "publish_advisory",
                "publish an advisory (revision 1) and tell who pulled what it "
                "covers (admin)",
                success="201",
                result=ref("Advisory"),
                body="AdvisoryDocument",
                errors=_W409,
            ),
        },
        "/advisories/{advisory}": {
            "get": _op(
                "get_advisory",
                "an advisory with the digests it covers now",
                success="200",
                result=ref("Advisory"),
                params=(_ADVISORY,),
            ),
            "patch": _op(
                "update_advisory",
                "publish the next revision with these fields changed (admin)",
                success="200",
                result=ref("Advisory"),
                body="AdvisoryUpdate",
                params=(_ADVISORY,),
                errors=_W409,
            ),
        },
        "/advisories/{advisory}/revisions": {
            "get": _op(
                "list_revisions",
                "every revision, oldest first, with who published it",
                success="200",
                result=ref("AdvisoryRevisions"),
                params=(_ADVISORY,),
            )
        },
        "/advisories/{advisory}/affected": {
            "get": _op(
                "list_affected",
                "identities that pulled a covered digest within "
                "advisories.affected_window_days (admin)",
                success="200",
                result=ref("AffectedIdentities"),
                params=(_ADVISORY,),
            )
        },
        "/repositories/{name}/tags/{tag}/history": {
            "get": _op(
                "tag_history",
                "every move of a tag, newest first (who may pull the repository)",
                success="200",
                result=ref("TagHistory"),
                params=(
                    _path_param("name", "repository name, slashes included"),
                    _path_param("tag", "tag"),
                ),
            )
        },
    }


def _query(name: str, description: str, schema: JSON | None = None) -> JSON:
    return {
        "name": name,
        "in": "query",
        "schema": schema or {"type": "string"},
        "description": description,
    }


_PULL_PARAMS = (
    _query("repository", "only this repository"),
    _query("digest", "only pulls served this manifest digest"),
    _query("tag", "only pulls that asked for this tag"),
    _query("identity", "only this identity, e.g. user:alice or token:<id>"),
    _query("since", "from this time on (ISO 8601 with a zone)", {
        "type": "string", "format": "date-time"}),
    _query("until", "before this time (ISO 8601 with a zone)", {
        "type": "string", "format": "date-time"}),
    _query("limit", "pulls per page", {
        "type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
    _query("next", "the cursor from the previous page's next"),
)  # fmt: skip


def _paths() -> dict[str, JSON]:
    return _accounts() | _delivery()


def _delivery() -> dict[str, JSON]:
    return {
        "/notices": {
            "get": _op(
                "list_notices",
                "the caller's advisory notices, newest first",
                success="200",
                result=ref("Notices"),
                params=(
                    {
                        "name": "unread",
                        "in": "query",
                        "schema": {"type": "boolean", "default": False},
                        "description": "only notices not yet read",
                    },
                ),
            )
        },
        "/notices/read": {
            "post": _op(
                "read_all_notices",
                "mark every notice of the caller read",
                success="200",
                result=ref("ReadCount"),
            )
        },
        "/notices/{notice_id}/read": {
            "post": _op(
                "read_notice",
                "mark one of the caller's notices read (another's is 404)",
                success="200",
                result=ref("ReadCount"),
                params=(_path_param("notice_id", "notice id"),),
            )
        },
        "/outbox": {
            "get": _op(
                "list_outbox",
                "outbox messages by id, e.g. the dead letters (admin)",
                success="200",
                result=ref("OutboxMessages"),
                params=(
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"enum": ["pending", "dead", "done"]},
                        "description": "only messages in this state",
                    },
                    *_PAGE,
                ),
            )
        },
        "/outbox/{message_id}/retry": {
            "post": _op(
                "retry_outbox",
                "deliver a dead message again, now, with fresh attempts (admin)",
                success="200",
                result=ref("Retried"),
                params=(_path_param("message_id", "outbox message id"),),
            )
        },
    }


def _accounts() -> dict[str, JSON]:
    return {
        **_webhook_paths("/orgs/{org}/webhooks", "org_webhook", "owner"),
        **_webhook_paths("/webhooks", "webhook", "admin"),
        "/openapi.json": {
            "get": {
                **_op(
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
            "get": _op(
                "list_organizations",
                "organizations (an admin sees all, others those they hold a role in)",
                success="200",
                result=list_of("Organization"),
            ),
            "post": _op(
                "create_organization",
                "create an organization (admin)",
                success="201",
                result=ref("Named"),
                body="Named",
                errors=_W409,
            ),
        },
        "/orgs/{org}": {
            "delete": _op(
                "delete_organization",
                "delete an organization, its grants and tokens (admin)",
                success="204",
                params=(_ORG,),
            )
        },
        "/orgs/{org}/contact": {
            "put": _op(
                "set_contact",
                "set or clear (null) the organization's security contact (owner)",
                success="200",
                result=ref("Organization"),
                body="SecurityContact",
                params=(_ORG,),
                errors=_W,
            )
        },
        "/orgs/{org}/members/{user}": {
            "put": _op(
                "set_member",
                "set a user's role on every repository of the organization (owner)",
                success="200",
                result=ref("Grant"),
                body="Membership",
                params=(_ORG, _USER),
                errors=_W,
            ),
            "delete": _op(
                "remove_member",
                "remove a user's roles in the organization (owner)",
                success="204",
                params=(_ORG, _USER),
            ),
        },
        "/orgs/{org}/grants": {
            "get": _op(
                "list_grants",
                "entitlements in the organization (owner)",
                success="200",
                result=list_of("Grant"),
                params=(_ORG,),
            ),
            "post": _op(
                "add_grant",
                "add an entitlement (owner)",
                success="201",
                result=ref("Grant"),
                body="NewGrant",
                params=(_ORG,),
                errors=_W,
            ),
        },
        "/orgs/{org}/grants/{grant_id}": {
            "delete": _op(
                "remove_grant",
                "remove an entitlement (owner)",
                success="204",
                params=(_ORG, _path_param("grant_id", "grant id")),
            )
        },
        "/orgs/{org}/tokens": {
            "get": _op(
                "list_tokens",
                "pull tokens of the organization, without secrets (owner)",
                success="200",
                result=list_of("PullToken"),
                params=(_ORG,),
            ),
            "post": _op(
                "create_token",
                "create a pull token; the answer is the only time "
                "its secret is shown (owner)",
                success="201",
                result=ref("CreatedPullToken"),
                body="NewPullToken",
                params=(_ORG,),
                errors=_W,
            ),
        },
        "/orgs/{org}/tokens/{token_id}": {
            "delete": _op(
                "revoke_token",
                "revoke a pull token (owner)",
                success="204",
                params=(_ORG, _path_param("token_id", "pull token id")),
            )
        },
        "/users": {
            "get": _op(
                "list_users", "users (admin)", success="200", result=list_of("User")
            ),
            "post": _op(
                "create_user",
                "create a user (admin)",
                success="201",
                result=ref("UserCreated"),
                body="NewUser",
                errors=_W409,
            ),
        },
        "/users/{user}": {
            "delete": _op(
                "delete_user",
                "delete a user and their roles (admin)",
                success="204",
                params=(_USER,),
            )
        },
        "/users/{user}/password": {
            "put": _op(
                "set_password",
                "set a password (admin, or the user themself); ends the "
                "user's refresh tokens",
                success="204",
                body="Password",
                params=(_USER,),
                errors=_W,
            )
        },
        "/users/{user}/email": {
            "put": _op(
                "set_email",
                "set or clear (null) a user's email (admin, or the user themself)",
                success="200",
                result=ref("UserEmail"),
                body="Email",
                params=(_USER,),
                errors=_W,
            )
        },
        **_advisory_paths(),
        "/oidc-identities": {
            "get": _op(
                "list_identities",
                "CI identities (admin)",
                success="200",
                result=list_of("OidcIdentity"),
            ),
            "post": _op(
                "create_identity",
                "trust CI jobs whose ID token matches (admin)",
                success="201",
                result=ref("Named"),
                body="NewOidcIdentity",
                errors=_W409,
            ),
        },
        "/oidc-identities/{name}": {
            "delete": _op(
                "delete_identity",
                "delete a CI identity and its grants (admin)",
                success="204",
                params=(_path_param("name", "identity name"),),
            )
        },
        "/repositories/{name}/settings": {
            "get": _op(
                "get_settings",
                "a repository's visibility and starter tags "
                "(owner of its organization)",
                success="200",
                result=ref("RepositorySettings"),
                params=(_path_param("name", "repository name, slashes included"),),
            ),
            "put": _op(
                "put_settings",
                "change visibility or starter tags (owner)",
                success="200",
                result=ref("RepositorySettings"),
                body="RepositorySettingsUpdate",
                params=(_path_param("name", "repository name, slashes included"),),
                errors=_W,
            ),
        },
        "/audit": {
            "get": _op(
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


def _pull_paths() -> dict[str, JSON]:
    return {
        "/pulls": {
            "get": _op(
                "list_pulls",
                "recorded manifest pulls, newest first (admin: all; an organization "
                "owner: its repositories')",
                success="200",
                result=ref("PullPage"),
                params=_PULL_PARAMS,
            )
        },
        "/me": {
            "get": _op(
                "whoami",
                "the caller: identity, kind, email (users), organizations",
                success="200",
                result=ref("Profile"),
            )
        },
        "/me/pulls": {
            "get": _op(
                "my_pulls",
                "the caller's own recorded pulls, newest first",
                success="200",
                result=ref("PullPage"),
                params=_PULL_PARAMS,
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
                "advisories, tag history and recorded pulls. Errors use the "
                "registry's shape, "
                '{"errors": [{code, message, detail}]}. '
                "Refused (403) when the registry runs with auth mode none."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": _paths() | _pull_paths(),
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                f"E{code}": {
                    "description": text,
                    "content": {"application/json": {"schema": ref("Error")}},
                }
                for code, text in _ERRORS.items()
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
