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


_TOKEN: dict[str, JSON] = {
    "id": {"type": "string"},
    "organization": _NAME,
    "description": {"type": "string"},
    "created_by": {"type": "string"},
    "created_at": _TIME,
    "expires_at": _MAYBE_TIME,
    "revoked_at": _MAYBE_TIME,
}


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
