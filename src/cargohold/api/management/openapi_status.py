"""OpenAPI paths and schemas of the status page's incidents and maintenances."""

from __future__ import annotations

from cargohold.api.management.openapi_ops import W, op, path_param
from cargohold.api.management.schemas import JSON, list_of, ref
from cargohold.metadata.status import IMPACTS, INCIDENT_STATUSES, MAINTENANCE_STATUSES

_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
_COMPONENTS = {
    "type": "array",
    "items": {"type": "string"},
    "maxItems": 100,
    "description": "component ids, as /api/v2/components.json lists them",
}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 10_000}
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
}


def _item(statuses: tuple[str, ...], *, maintenance: bool) -> JSON:
    required = ["id", "name", "status", "impact", "components", "created_at"]
    required += ["updated_at", "monitoring_at", "resolved_at", "updates"]
    properties: JSON = {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": list(statuses)},
        "impact": {"type": "string", "enum": [*IMPACTS, "maintenance"]},
        "components": _COMPONENTS,
        "created_at": _TIME,
        "updated_at": _TIME,
        "monitoring_at": _MAYBE_TIME,
        "resolved_at": _MAYBE_TIME,
        "updates": {
            "type": "array",
            "description": "oldest first",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "status", "body", "created_at"],
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string", "enum": list(statuses)},
                    "body": {"type": "string"},
                    "created_at": _TIME,
                },
            },
        },
    }
    if maintenance:
        required += ["scheduled_for", "scheduled_until"]
        properties |= {"scheduled_for": _TIME, "scheduled_until": _TIME}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


STATUS_SCHEMAS: dict[str, JSON] = {
    "StatusIncident": _item(INCIDENT_STATUSES, maintenance=False),
    "StatusMaintenance": _item(MAINTENANCE_STATUSES, maintenance=True),
    "NewStatusIncident": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "body"],
        "properties": {
            "name": _NAME,
            "body": _TEXT,
            "status": {
                "type": "string",
                "enum": list(INCIDENT_STATUSES),
                "default": "investigating",
            },
            "impact": {"type": "string", "enum": list(IMPACTS), "default": "minor"},
            "components": _COMPONENTS,
        },
    },
    "StatusIncidentUpdate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "body"],
        "properties": {
            "status": {"type": "string", "enum": list(INCIDENT_STATUSES)},
            "body": _TEXT,
            "impact": {"type": "string", "enum": list(IMPACTS)},
            "components": _COMPONENTS,
        },
    },
    "NewStatusMaintenance": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "body", "scheduled_for", "scheduled_until"],
        "properties": {
            "name": _NAME,
            "body": _TEXT,
            "scheduled_for": _TIME,
            "scheduled_until": _TIME,
            "components": _COMPONENTS,
        },
    },
    "StatusMaintenanceUpdate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "body"],
        "properties": {
            "status": {"type": "string", "enum": list(MAINTENANCE_STATUSES)},
            "body": _TEXT,
            "components": _COMPONENTS,
        },
    },
}


def _paths(plural: str, singular: str, schema: str, new: str, create: str) -> JSON:
    one = path_param(f"{singular}_id", f"the {singular}'s id")
    return {
        f"/status/{plural}": {
            "get": op(
                f"list_{plural}",
                f"status page {plural}, newest first (admin)",
                success="200",
                result=list_of(schema),
                params=(_LIMIT,),
            ),
            "post": op(
                create,
                f"open a {singular} on the status page (admin)",
                success="201",
                result=ref(schema),
                body=new,
                errors=W,
            ),
        },
        f"/status/{plural}/{{{singular}_id}}": {
            "get": op(
                f"get_{singular}",
                f"one {singular} with its updates (admin)",
                success="200",
                result=ref(schema),
                params=(one,),
            )
        },
        f"/status/{plural}/{{{singular}_id}}/updates": {
            "post": op(
                f"update_{singular}",
                f"post an update; it moves the {singular} to its status (admin)",
                success="201",
                result=ref(schema),
                body=f"{schema}Update",
                params=(one,),
                errors=W,
            )
        },
    }


def status_paths() -> dict[str, JSON]:
    return _paths(
        "incidents",
        "incident",
        "StatusIncident",
        "NewStatusIncident",
        "create_incident",
    ) | _paths(
        "maintenances",
        "maintenance",
        "StatusMaintenance",
        "NewStatusMaintenance",
        "schedule_maintenance",
    )
