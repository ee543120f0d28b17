"""The JSON Schemas (2020-12, as OpenAPI 3.1 uses) of management bodies and answers."""

from __future__ import annotations

from typing import Any

from cargohold.auth.policy import ROLES

JSON = dict[str, Any]

_NAME = {"type": "string", "pattern": "^[a-z0-9]+(?:[._-][a-z0-9]+)*$", "maxLength": 64}
_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
_PATTERNS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 128},
    "maxItems": 100,
}
_MAYBE_PATTERNS = {**_PATTERNS, "type": ["array", "null"]}
_MAYBE_EMAIL = {"type": ["string", "null"], "format": "email", "maxLength": 254}
_DIGEST = {"type": "string", "pattern": "^[a-z0-9]+:[a-zA-Z0-9=_-]+$"}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_AFFECTED = {
    "type": "array",
    "minItems": 1,
    "maxItems": 100,
    "items": {
        "type": "object",
        "required": ["repository"],
        "additionalProperties": False,
        "properties": {
            "repository": {"type": "string"},
            "digests": {"type": "array", "items": _DIGEST, "maxItems": 100},
            "tags": {**_STRINGS, "maxItems": 100, "description": "tag globs"},
        },
    },
}
_ADVISORY_FIELDS: dict[str, Any] = {
    "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"},
    "title": {"type": "string", "minLength": 1, "maxLength": 200},
    "severity": {"type": "string", "enum": ["critical", "high", "medium", "low"]},
    "state": {"type": "string", "enum": ["draft", "upcoming", "current", "resolved"]},
    "description": {"type": "string", "description": "Markdown"},
    "affected": _AFFECTED,
    "fixed_in": {
        "type": ["string", "null"],
        "description": "tag, digest, repository:tag or repository@digest",
    },
    "aliases": {**_STRINGS, "maxItems": 20},
    "url": {"type": ["string", "null"], "format": "uri"},
}


_TOKEN: dict[str, JSON] = {
    "id": {"type": "string"},
    "organization": _NAME,
    "description": {"type": "string"},
    "created_by": {"type": "string"},
    "created_at": _TIME,
    "expires_at": _MAYBE_TIME,
    "revoked_at": _MAYBE_TIME,
}


_WEBHOOK: dict[str, JSON] = {
    "id": {"type": "string"},
    "organization": {**_NAME, "type": ["string", "null"]},
    "url": {"type": "string"},
    "events": {"type": "array", "items": {"type": "string"}},
    "repositories": {"type": "array", "items": {"type": "string"}},
    "batch_pulls": {"type": "boolean"},
    "disabled": {"type": "boolean"},
    "created_by": {"type": "string"},
    "created_at": _TIME,
    "previous_secret_until": {
        **_MAYBE_TIME,
        "description": "until when the secret before the last rotation also signs",
    },
}
_WEBHOOK_EVENTS = [
    "push",
    "pull",
    "delete",
    "tag.moved",
    "advisory.published",
    "advisory.updated",
]


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(
    required: list[str], properties: dict[str, JSON], *, closed: bool = True
) -> JSON:
    schema: JSON = {"type": "object", "required": required, "properties": properties}
    if closed:
        schema["additionalProperties"] = False
    return schema


def list_of(item: str) -> JSON:
    return {"type": "array", "items": ref(item)}


_ADVISORY_SCHEMAS: dict[str, JSON] = {
    "Email": _object([], {"email": _MAYBE_EMAIL}),
    "UserEmail": _object(["name", "email"], {"name": _NAME, "email": _MAYBE_EMAIL}),
    "SecurityContact": _object([], {"security_contact": _MAYBE_EMAIL}),
    "Organization": _object(
        ["name", "security_contact"],
        {"name": _NAME, "security_contact": _MAYBE_EMAIL},
    ),
    "AdvisoryDocument": _object(
        ["id", "title", "severity", "state", "affected"], _ADVISORY_FIELDS
    ),
    "AdvisoryUpdate": _object([], _ADVISORY_FIELDS),
    "Advisory": _object(
        ["id", "revision", "title", "severity", "state", "affected"],
        {
            **_ADVISORY_FIELDS,
            "revision": {"type": "integer", "minimum": 1},
            "created_at": _TIME,
            "updated_at": _TIME,
            "digests": {
                "type": "array",
                "items": _object(
                    ["repository", "digest", "via_tag"],
                    {
                        "repository": {"type": "string"},
                        "digest": _DIGEST,
                        "via_tag": {"type": ["string", "null"]},
                    },
                ),
            },
        },
    ),
    "Advisories": _object(["advisories"], {"advisories": list_of("Advisory")}),
    "AdvisoryRevisions": _object(
        ["revisions"],
        {
            "revisions": {
                "type": "array",
                "items": _object(
                    ["revision", "at", "actor", "document"],
                    {
                        "revision": {"type": "integer", "minimum": 1},
                        "at": _TIME,
                        "actor": {"type": "string"},
                        "document": {"type": "object"},
                    },
                ),
            }
        },
    ),
    "AffectedIdentities": _object(
        ["identities"],
        {
            "identities": {
                "type": "array",
                "items": _object(
                    ["identity", "organization", "contact", "digests", "last_pull"],
                    {
                        "identity": {"type": "string"},
                        "organization": {"type": ["string", "null"]},
                        "contact": _MAYBE_EMAIL,
                        "digests": {"type": "array", "items": _DIGEST},
                        "last_pull": _TIME,
                    },
                ),
            }
        },
    ),
    "TagHistory": _object(
        ["history"],
        {
            "history": {
                "type": "array",
                "items": _object(
                    ["repository", "tag", "from", "to", "at", "actor"],
                    {
                        "repository": {"type": "string"},
                        "tag": {"type": "string"},
                        "from": {"type": ["string", "null"]},
                        "to": {"type": ["string", "null"]},
                        "at": _TIME,
                        "actor": {"type": "string"},
                    },
                ),
            }
        },
    ),
}

SCHEMAS: dict[str, JSON] = {
    "Error": _object(
        ["errors"],
        {
            "errors": {
                "type": "array",
                "items": _object(
                    ["code", "message"],
                    {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "detail": {},
                    },
                ),
            }
        },
    ),
    "Role": {"type": "string", "enum": list(ROLES)},
    "Named": _object(["name"], {"name": _NAME}),
    "NewUser": _object(
        ["name", "password"],
        {
            "name": _NAME,
            "password": {"type": "string", "minLength": 12, "maxLength": 1024},
            "admin": {"type": "boolean", "default": False},
        },
    ),
    "UserCreated": _object(
        ["name", "admin"], {"name": _NAME, "admin": {"type": "boolean"}}
    ),
    "User": _object(
        ["name", "admin", "disabled", "created_at"],
        {
            "name": _NAME,
            "admin": {"type": "boolean"},
            "disabled": {"type": "boolean"},
            "email": _MAYBE_EMAIL,
            "created_at": _TIME,
        },
    ),
    "Password": _object(
        ["password"],
        {
            "password": {"type": "string", "minLength": 12, "maxLength": 1024},
        },
    ),
    "Membership": _object(["role"], {"role": ref("Role")}),
    "NewGrant": _object(
        ["principal", "repository", "role"],
        {
            "principal": {
                "type": "string",
                "pattern": "^(user|token|oidc):[A-Za-z0-9._-]+$",
                "description": "user:<name>, token:<id> or oidc:<identity>",
            },
            "repository": {
                "type": "string",
                "maxLength": 255,
                "description": "a glob under <org>/, such as acme/app-*",
            },
            "role": ref("Role"),
            "tags": {
                **_MAYBE_PATTERNS,
                "description": "only these tags (globs) and what they reach; null: all",
            },
        },
    ),
    "Grant": _object(
        ["id", "principal", "organization", "repository", "role", "tags", "created_at"],
        {
            "id": {"type": "integer"},
            "principal": {"type": "string"},
            "organization": _NAME,
            "repository": {"type": "string"},
            "role": ref("Role"),
            "tags": _MAYBE_PATTERNS,
            "created_at": _TIME,
        },
    ),
    "NewPullToken": _object(
        ["description"],
        {
            "description": {"type": "string", "maxLength": 255},
            "role": {**ref("Role"), "default": "puller"},
            "repository": {
                "type": ["string", "null"],
                "maxLength": 255,
                "description": "a glob under <org>/; default <org>/*",
            },
            "tags": _MAYBE_PATTERNS,
            "expires_in_days": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "maximum": 3650,
                "description": "null: never expires",
            },
        },
    ),
    "PullToken": _object(list(_TOKEN), _TOKEN),
    "NewWebhook": _object(
        ["url"],
        {
            "url": {
                "type": "string",
                "maxLength": 2048,
                "description": "http(s); no loopback, private or link-local address "
                "unless webhooks.allow_private_networks",
            },
            "events": {
                "type": ["array", "null"],
                "items": {"enum": _WEBHOOK_EVENTS},
                "minItems": 1,
                "description": "default: every event",
            },
            "repositories": {
                "type": ["array", "null"],
                "items": {"type": "string", "minLength": 1, "maxLength": 255},
                "maxItems": 100,
                "description": "repository globs (under <org>/ for an organization's "
                "webhook); default: every repository",
            },
            "batch_pulls": {
                "type": ["boolean", "null"],
                "default": False,
                "description": "pull events in one delivery per batch",
            },
        },
    ),
    "Webhook": _object(list(_WEBHOOK), _WEBHOOK),
    "WebhookWithSecret": _object(
        [*_WEBHOOK, "secret"],
        _WEBHOOK
        | {
            "secret": {
                "type": "string",
                "pattern": "^whsec_",
                "description": "the Standard Webhooks signing secret; shown once",
            }
        },
    ),
    "WebhookTest": _object(
        ["ok", "status_code", "error", "duration_ms"],
        {
            "ok": {"type": "boolean"},
            "status_code": {"type": ["integer", "null"]},
            "error": {"type": ["string", "null"]},
            "duration_ms": {"type": "number"},
        },
    ),
    "WebhookDelivery": _object(
        [
            "id",
            "message_id",
            "event",
            "attempt",
            "at",
            "status_code",
            "error",
            "duration_ms",
        ],
        {
            "id": {"type": "integer"},
            "message_id": {"type": "string", "description": "the webhook-id header"},
            "event": {"type": "string"},
            "attempt": {"type": "integer"},
            "at": _TIME,
            "status_code": {"type": ["integer", "null"]},
            "error": {"type": ["string", "null"]},
            "duration_ms": {"type": "number"},
        },
    ),
    "CreatedPullToken": _object(
        [*_TOKEN, "secret"],
        _TOKEN
        | {
            "secret": {
                "type": "string",
                "pattern": "^chp_",
                "description": "the password (any username); shown once",
            }
        },
    ),
    "NewOidcIdentity": _object(
        ["name", "issuer", "audience", "subject"],
        {
            "name": _NAME,
            "issuer": {"type": "string", "format": "uri", "maxLength": 255},
            "audience": {"type": "string", "maxLength": 255},
            "subject": {"type": "string", "maxLength": 255, "description": "a glob"},
            "claims": {
                "type": ["object", "null"],
                "additionalProperties": {"type": "string"},
                "description": "claim name to the glob its value must match",
            },
        },
    ),
    "OidcIdentity": _object(
        ["name", "issuer", "audience", "subject", "claims", "created_at"],
        {
            "name": _NAME,
            "issuer": {"type": "string"},
            "audience": {"type": "string"},
            "subject": {"type": "string"},
            "claims": {"type": "object", "additionalProperties": {"type": "string"}},
            "created_at": _TIME,
        },
    ),
    "RepositorySettingsUpdate": _object(
        [],
        {
            "visibility": {
                "enum": ["public", "private", None],
                "description": "null or absent: unchanged",
            },
            "starter_tags": {
                **_MAYBE_PATTERNS,
                "description": "null or absent: unchanged",
            },
        },
    ),
    "RepositorySettings": _object(
        ["repository", "visibility", "starter_tags", "updated_at"],
        {
            "repository": {"type": "string"},
            "visibility": {"enum": ["public", "private"]},
            "starter_tags": {
                **_MAYBE_PATTERNS,
                "description": "null: the registry's default starter tags",
            },
            "updated_at": {**_MAYBE_TIME, "description": "null: never set"},
        },
    ),
    "AuditEvent": _object(
        ["id", "at", "actor", "action", "target", "outcome", "client", "detail"],
        {
            "id": {"type": "integer"},
            "at": _TIME,
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "target": {"type": "string"},
            "outcome": {"type": "string"},
            "client": {"type": "string"},
            "detail": {
                "type": ["string", "null"],
                "description": "often a JSON object",
            },
        },
    ),
    "PullPage": _object(
        ["pulls", "next"],
        {
            "pulls": {
                "type": "array",
                "items": _object(
                    [
                        "identity",
                        "repository",
                        "reference",
                        "digest",
                        "time",
                        "client",
                        "user_agent",
                        "tool",
                        "tool_version",
                        "platform",
                        "method",
                    ],
                    {
                        "identity": {
                            "type": "string",
                            "description": "user:<name>, token:<id>, oidc:<name>, "
                            "or anonymous:<address or network>",
                        },
                        "repository": {"type": "string"},
                        "reference": {
                            "type": "string",
                            "description": "the tag or digest asked for",
                        },
                        "digest": {
                            "type": "string",
                            "description": "the manifest served",
                        },
                        "time": _TIME,
                        "client": {"type": "string"},
                        "user_agent": {"type": "string"},
                        "tool": {
                            "type": "string",
                            "description": "docker, podman (containers-image), "
                            "skopeo, ...; other when unknown",
                        },
                        "tool_version": {"type": "string"},
                        "platform": {
                            "type": "string",
                            "description": "e.g. linux/amd64",
                        },
                        "method": {"type": "string", "enum": ["GET", "HEAD"]},
                    },
                ),
            },
            "next": {
                "type": ["string", "null"],
                "description": "pass as ?next= for the following page; null: last page",
            },
        },
    ),
    "Notice": _object(
        [
            "id",
            "advisory",
            "revision",
            "title",
            "severity",
            "state",
            "digests",
            "fixed_in",
            "read",
            "created_at",
        ],
        {
            "id": {"type": "integer"},
            "advisory": {"type": "string"},
            "revision": {"type": "integer"},
            "title": {"type": "string"},
            "severity": {"type": "string"},
            "state": {"type": "string"},
            "digests": {"type": "array", "items": {"type": "string"}},
            "fixed_in": {"type": ["string", "null"]},
            "read": {"type": "boolean"},
            "created_at": _TIME,
        },
    ),
    "Notices": _object(["notices"], {"notices": list_of("Notice")}),
    "ReadCount": _object(["read"], {"read": {"type": "integer"}}),
    "Profile": _object(
        ["identity", "kind", "admin", "email", "organizations"],
        {
            "identity": {"type": "string"},
            "kind": {"enum": ["user", "token", "oidc"]},
            "admin": {"type": "boolean"},
            "email": {"type": ["string", "null"]},
            "organizations": {"type": "array", "items": {"type": "string"}},
        },
    ),
    "OutboxMessage": _object(
        [
            "id",
            "channel",
            "key",
            "state",
            "attempts",
            "last_error",
            "next_attempt_at",
            "created_at",
            "updated_at",
        ],
        {
            "id": {"type": "integer"},
            "channel": {"type": "string"},
            "key": {"type": "string"},
            "state": {"enum": ["pending", "dead", "done"]},
            "attempts": {"type": "integer"},
            "last_error": {"type": ["string", "null"]},
            "next_attempt_at": _MAYBE_TIME,
            "created_at": _TIME,
            "updated_at": _TIME,
        },
    ),
    "OutboxMessages": _object(["messages"], {"messages": list_of("OutboxMessage")}),
    "Retried": _object(["retried"], {"retried": {"type": "integer"}}),
}

SCHEMAS |= _ADVISORY_SCHEMAS
