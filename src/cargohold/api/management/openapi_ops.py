"""Building blocks of the OpenAPI document: error answers, parameters, operations."""

from __future__ import annotations

from cargohold.api.management.body import MAX_BODY
from cargohold.api.management.schemas import JSON, ref

ERRORS = {
    "400": "invalid request: malformed body, wrong type or value",
    "401": "no or wrong credentials (answered with a Basic challenge)",
    "403": "not allowed to this caller, or auth mode is none",
    "404": "no such object",
    "409": "already exists",
    "413": f"body larger than {MAX_BODY} bytes",
    "415": "body not sent as application/json",
    "429": "too many failed logins",
}
READ_ERRORS = ("400", "401", "403", "404", "429")
WRITE_ERRORS = ("400", "401", "403", "404", "413", "415", "429")


_INTEGERS = {"grant_id", "notice_id", "message_id"}


def path_param(name: str, description: str) -> JSON:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer"} if name in _INTEGERS else {"type": "string"},
    }


def op(
    operation_id: str,
    summary: str,
    *,
    success: str,
    result: JSON | None = None,
    body: str | None = None,
    params: tuple[JSON, ...] = (),
    errors: tuple[str, ...] = READ_ERRORS,
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


ORG = path_param("org", "organization name")
USER = path_param("user", "user name")
PAGE = (
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
W = WRITE_ERRORS
W409 = (*WRITE_ERRORS, "409")
