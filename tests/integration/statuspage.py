"""What status aggregators read from a Statuspage API v2 page, as JSON Schemas.

Written from the statuspage.io API client's published types (``Result.d.ts`` of the
npm package ``statuspage.io``: Page, Component, Incident, IncidentUpdate,
ScheduledMaintenance, Status) and Atlassian's descriptions of ``/api/v2``: every field
such a client declares is required here with the type it declares.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

_STRING = {"type": "string"}
_MAYBE_STRING = {"type": ["string", "null"]}
_TIME = {
    "type": "string",
    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$",
}
_MAYBE_TIME = {"anyOf": [_TIME, {"type": "null"}]}
PAGE = {
    "type": "object",
    "required": ["id", "name", "url", "time_zone", "updated_at"],
    "properties": {
        "id": _STRING,
        "name": _STRING,
        "url": {"type": "string", "pattern": "^https?://"},
        "time_zone": _STRING,
        "updated_at": _TIME,
    },
}
COMPONENT = {
    "type": "object",
    "required": [
        "id", "name", "status", "created_at", "updated_at", "position", "description",
        "showcase", "start_date", "group_id", "page_id", "group",
        "only_show_if_degraded",
    ],
    "properties": {
        "id": _STRING,
        "name": _STRING,
        "status": {
            "enum": [
                "operational", "degraded_performance", "partial_outage",
                "major_outage", "under_maintenance",
            ]
        },
        "created_at": _TIME,
        "updated_at": _TIME,
        "position": {"type": "integer"},
        "description": _MAYBE_STRING,
        "showcase": {"type": "boolean"},
        "start_date": _MAYBE_STRING,
        "group_id": _MAYBE_STRING,
        "page_id": _STRING,
        "group": {"type": "boolean"},
        "only_show_if_degraded": {"type": "boolean"},
    },
}  # fmt: skip
UPDATE = {
    "type": "object",
    "required": [
        "id", "status", "body", "incident_id", "created_at", "updated_at", "display_at",
    ],
    "properties": {
        "id": _STRING,
        "status": _STRING,
        "body": _STRING,
        "incident_id": _STRING,
        "created_at": _TIME,
        "updated_at": _TIME,
        "display_at": _MAYBE_TIME,
        "affected_components": {"type": "array"},
    },
}  # fmt: skip
INCIDENT = {
    "type": "object",
    "required": [
        "id", "name", "status", "created_at", "updated_at", "monitoring_at",
        "resolved_at", "impact", "shortlink", "page_id", "incident_updates",
    ],
    "properties": {
        "id": _STRING,
        "name": _STRING,
        "status": {
            "enum": ["investigating", "identified", "monitoring", "resolved",
                     "postmortem"]
        },
        "created_at": _TIME,
        "updated_at": _TIME,
        "monitoring_at": _MAYBE_TIME,
        "resolved_at": _MAYBE_TIME,
        "impact": {"enum": ["none", "minor", "major", "critical"]},
        "shortlink": _STRING,
        "page_id": _STRING,
        "incident_updates": {"type": "array", "items": UPDATE},
        "components": {"type": "array", "items": COMPONENT},
    },
}  # fmt: skip
MAINTENANCE = {
    **INCIDENT,
    "required": [*INCIDENT["required"], "scheduled_for", "scheduled_until"],
    "properties": {
        **INCIDENT["properties"],  # type: ignore[dict-item]
        "status": {"enum": ["scheduled", "in_progress", "verifying", "completed"]},
        "impact": {"enum": ["none", "minor", "major", "critical", "maintenance"]},
        "scheduled_for": _TIME,
        "scheduled_until": _TIME,
    },
}
STATUS = {
    "type": "object",
    "required": ["indicator", "description"],
    "properties": {
        "indicator": {"enum": ["none", "minor", "major", "critical", "maintenance"]},
        "description": _STRING,
    },
}


def _document(**lists: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["page", *lists],
        "properties": {"page": PAGE, **lists},
    }


DOCUMENTS: dict[str, dict[str, Any]] = {
    "status.json": _document(status=STATUS),
    "summary.json": _document(
        status=STATUS,
        components={"type": "array", "items": COMPONENT},
        incidents={"type": "array", "items": INCIDENT},
        scheduled_maintenances={"type": "array", "items": MAINTENANCE},
    ),
    "components.json": _document(components={"type": "array", "items": COMPONENT}),
    "incidents.json": _document(incidents={"type": "array", "items": INCIDENT}),
    "incidents/unresolved.json": _document(
        incidents={"type": "array", "items": INCIDENT}
    ),
    "scheduled-maintenances.json": _document(
        scheduled_maintenances={"type": "array", "items": MAINTENANCE}
    ),
    "scheduled-maintenances/upcoming.json": _document(
        scheduled_maintenances={"type": "array", "items": MAINTENANCE}
    ),
    "scheduled-maintenances/active.json": _document(
        scheduled_maintenances={"type": "array", "items": MAINTENANCE}
    ),
}


def check(name: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` is what a reader expects."""
    Draft202012Validator(DOCUMENTS[name]).validate(body)
