"""The status page's renderings, from one ``StatusView``: HTML, Statuspage JSON, Atom.

Pure (no I/O): the routes in ``web/status`` and ``cargohold status export`` render
the same view, the server with absolute links, the export with relative ones.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from cargohold.metadata.status import MAINTENANCE

if TYPE_CHECKING:
    from cargohold.metadata.status import Incident
    from cargohold.registry.status import ComponentView, StatusView

JSON = dict[str, Any]
ATOM = "http://www.w3.org/2005/Atom"
# Statuspage's names for the documents, relative to the site root.
DOCUMENTS = (
    "status.json",
    "summary.json",
    "components.json",
    "incidents.json",
    "incidents/unresolved.json",
    "scheduled-maintenances.json",
    "scheduled-maintenances/upcoming.json",
    "scheduled-maintenances/active.json",
)

_ENV = Environment(
    loader=PackageLoader("cargohold.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_LABELS = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    "under_maintenance": "Under maintenance",
}


def iso(at: float | None) -> str | None:
    """Statuspage's timestamps: ISO 8601, UTC, milliseconds."""
    if at is None:
        return None
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _human(at: float | None) -> str:
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%b %d, %Y %H:%M UTC")


def page_id(view: StatusView) -> str:
    """A stable id for the page (Statuspage's are 12 characters)."""
    return hashlib.sha256(view.url.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class Links:
    """Where the page points: absolute on the server, relative in an export."""

    stylesheet: str
    json_base: str  # followed by e.g. "summary.json"
    feed: str
    page: str


SERVER_LINKS = Links(
    "/static/cargohold.css", "/api/v2/", "/status/history.atom", "/status"
)
EXPORT_LINKS = Links("static/cargohold.css", "api/v2/", "history.atom", "index.html")


# -- Statuspage JSON (API v2) --


def _page(view: StatusView) -> JSON:
    return {
        "id": page_id(view),
        "name": view.name,
        "url": view.url,
        "time_zone": "Etc/UTC",
        "updated_at": iso(view.updated_at),
    }


def _component(view: StatusView, cv: ComponentView) -> JSON:
    first = next((bar.day for bar in cv.bars if bar.status is not None), None)
    created = first * 86_400 if first is not None else view.now
    return {
        "id": cv.component.id,
        "name": cv.component.name,
        "status": cv.status,
        "created_at": iso(created),
        "updated_at": iso(cv.check.checked_at if cv.check else view.now),
        "position": cv.component.position,
        "description": cv.component.description,
        "showcase": True,
        "start_date": datetime.fromtimestamp(created, UTC).date().isoformat(),
        "group_id": None,
        "page_id": page_id(view),
        "group": False,
        "only_show_if_degraded": False,
    }


def _incident(view: StatusView, item: Incident) -> JSON:
    components = view.by_id
    affected = [
        _component(view, cv)
        for cv in view.components
        if cv.component.id in item.components
    ]
    body: JSON = {
        "id": item.id,
        "name": item.name,
        "status": item.status,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "monitoring_at": iso(item.monitoring_at),
        "resolved_at": iso(item.resolved_at),
        "impact": item.impact,
        "shortlink": f"{view.url}#{item.id}",
        "started_at": iso(item.created_at),
        "page_id": page_id(view),
        "incident_updates": [
            {
                "id": update.id,
                "status": update.status,
                "body": update.body,
                "incident_id": item.id,
                "created_at": iso(update.created_at),
                "updated_at": iso(update.created_at),
                "display_at": iso(update.created_at),
                "affected_components": [
                    {
                        "code": component,
                        "name": components[component].name
                        if component in components
                        else component,
                        "old_status": "operational",
                        "new_status": "operational",
                    }
                    for component in item.components
                ],
                "deliver_notifications": False,
                "custom_tweet": None,
                "tweet_id": None,
            }
            for update in reversed(item.updates)  # newest first, as Statuspage does
        ],
        "components": affected,
    }
    if item.kind == MAINTENANCE:
        body["scheduled_for"] = iso(item.scheduled_for)
        body["scheduled_until"] = iso(item.scheduled_until)
    return body


def documents(view: StatusView) -> dict[str, JSON]:
    """Every ``/api/v2/<name>`` document, by name."""
    page = _page(view)
    status = {"indicator": view.indicator, "description": view.description}
    components = [_component(view, cv) for cv in view.components]
    unresolved = [_incident(view, i) for i in view.open_incidents]
    upcoming = [
        _incident(view, m) for m in view.maintenances if m.status == "scheduled"
    ]
    active = [
        _incident(view, m)
        for m in view.maintenances
        if m.status in ("in_progress", "verifying")
    ]
    return {
        "status.json": {"page": page, "status": status},
        "summary.json": {
            "page": page,
            "components": components,
            "incidents": unresolved,
            "scheduled_maintenances": [*active, *upcoming],
            "status": status,
        },
        "components.json": {"page": page, "components": components},
        "incidents.json": {
            "page": page,
            "incidents": [_incident(view, i) for i in view.all_incidents],
        },
        "incidents/unresolved.json": {"page": page, "incidents": unresolved},
        "scheduled-maintenances.json": {
            "page": page,
            "scheduled_maintenances": [
                _incident(view, m) for m in view.all_maintenances
            ],
        },
        "scheduled-maintenances/upcoming.json": {
            "page": page,
            "scheduled_maintenances": upcoming,
        },
        "scheduled-maintenances/active.json": {
            "page": page,
            "scheduled_maintenances": active,
        },
    }


# -- Atom --


def atom(view: StatusView, *, page_url: str) -> bytes:
    """Incidents and maintenances, newest change first (RFC 4287)."""
    ET.register_namespace("", ATOM)

    def sub(
        parent: ET.Element, tag: str, text: str | None = None, **attrs: str
    ) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ET.Element(f"{{{ATOM}}}feed")
    sub(feed, "id", f"{view.url}/history")
    sub(feed, "title", f"{view.name} status history")
    sub(feed, "updated", iso(view.updated_at))
    sub(feed, "link", rel="alternate", type="text/html", href=page_url)
    author = sub(feed, "author")
    sub(author, "name", view.name)
    items = sorted(
        (*view.all_incidents, *view.all_maintenances),
        key=lambda i: i.updated_at,
        reverse=True,
    )
    for item in items:
        entry = sub(feed, "entry")
        sub(entry, "id", f"{view.url}#{item.id}")
        sub(entry, "title", item.name)
        sub(entry, "published", iso(item.created_at))
        sub(entry, "updated", iso(item.updated_at))
        sub(
            entry,
            "link",
            rel="alternate",
            type="text/html",
            href=f"{page_url}#{item.id}",
        )
        sub(entry, "category", term=item.kind)
        text = "\n".join(
            f"{_human(update.created_at)} - {update.status}: {update.body}"
            for update in reversed(item.updates)
        )
        sub(entry, "content", text, type="text")
    return (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        + ET.tostring(feed, encoding="unicode").encode()
    )


# -- HTML --


def html(view: StatusView, links: Links) -> str:
    return _ENV.get_template("status.html").render(
        view=view,
        links=links,
        labels=_LABELS,
        human=_human,
        percent=lambda share: "no data" if share is None else f"{share * 100:.2f} %",
    )
