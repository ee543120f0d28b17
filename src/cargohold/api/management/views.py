"""Records as the management API shows them: JSON objects, times in RFC 3339 (UTC).

Nothing here ever emits a password hash or a pull token's secret hash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cargohold.metadata.accounts import (
        AuditEvent,
        GrantRecord,
        OidcIdentityRecord,
        PullTokenRecord,
        RepositorySettingsRecord,
        UserRecord,
    )
    from cargohold.metadata.advisories import (
        AdvisoryRecord,
        AffectedDigest,
        AffectedIdentity,
        RevisionRecord,
        TagMove,
    )
    from cargohold.metadata.delivery import NoticeRecord, OutboxRecord
    from cargohold.metadata.webhooks import DeliveryRecord, WebhookRecord

JSON = dict[str, object]


def timestamp(value: float | None) -> str | None:
    if not value:
        return None
    moment = datetime.fromtimestamp(value, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def user(record: UserRecord) -> JSON:
    return {
        "name": record.name,
        "admin": record.is_admin,
        "disabled": record.disabled,
        "email": record.email,
        "created_at": timestamp(record.created_at),
    }


def grant(record: GrantRecord) -> JSON:
    return {
        "id": record.id,
        "principal": record.principal,
        "organization": record.organization,
        "repository": record.repository,
        "role": record.role,
        "tags": list(record.tags) if record.tags is not None else None,
        "created_at": timestamp(record.created_at),
    }


def pull_token(record: PullTokenRecord) -> JSON:
    return {
        "id": record.id,
        "organization": record.organization,
        "description": record.description,
        "created_by": record.created_by,
        "created_at": timestamp(record.created_at),
        "expires_at": timestamp(record.expires_at),
        "revoked_at": timestamp(record.revoked_at),
    }


def oidc_identity(record: OidcIdentityRecord) -> JSON:
    return {
        "name": record.name,
        "issuer": record.issuer,
        "audience": record.audience,
        "subject": record.subject,
        "claims": dict(record.claims),
        "created_at": timestamp(record.created_at),
    }


def repository_settings(record: RepositorySettingsRecord) -> JSON:
    return {
        "repository": record.repository,
        "visibility": record.visibility,
        "starter_tags": (
            list(record.starter_tags) if record.starter_tags is not None else None
        ),
        "updated_at": timestamp(record.updated_at),
    }


def audit_event(event: AuditEvent) -> JSON:
    return {
        "id": event.id,
        "at": timestamp(event.at),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "client": event.client,
        "detail": event.detail,
    }


def webhook(record: WebhookRecord) -> JSON:
    """A webhook without its secrets."""
    return {
        "id": record.id,
        "organization": record.organization,
        "url": record.url,
        "events": list(record.events),
        "repositories": list(record.repositories),
        "batch_pulls": record.batch_pulls,
        "disabled": record.disabled,
        "created_by": record.created_by,
        "created_at": timestamp(record.created_at),
        "previous_secret_until": timestamp(record.previous_until),
    }


def webhook_delivery(record: DeliveryRecord) -> JSON:
    return {
        "id": record.id,
        "message_id": record.message_id,
        "event": record.event,
        "attempt": record.attempt,
        "at": timestamp(record.at),
        "status_code": record.status_code,
        "error": record.error,
        "duration_ms": round(record.duration_ms, 3),
    }


def advisory(
    record: AdvisoryRecord, digests: list[AffectedDigest] | None = None
) -> JSON:
    shown: JSON = {
        **record.document,
        "revision": record.revision,
        "created_at": timestamp(record.created_at),
        "updated_at": timestamp(record.updated_at),
    }
    if digests is not None:
        shown["digests"] = [
            {"repository": d.repository, "digest": d.digest, "via_tag": d.via_tag}
            for d in digests
        ]
    return shown


def advisory_revision(record: RevisionRecord) -> JSON:
    return {
        "revision": record.revision,
        "at": timestamp(record.at),
        "actor": record.actor,
        "document": record.document,
    }


def affected_identity(entry: AffectedIdentity) -> JSON:
    return {
        "identity": entry.identity,
        "organization": entry.organization,
        "contact": entry.contact,
        "digests": sorted({i.digest for i in entry.images}),
        "last_pull": timestamp(entry.last_pull),
    }


def tag_move(move: TagMove) -> JSON:
    return {
        "repository": move.repository,
        "tag": move.tag,
        "from": move.from_digest,
        "to": move.to_digest,
        "at": timestamp(move.at),
        "actor": move.actor,
    }


def notice(record: NoticeRecord) -> JSON:
    document = record.document
    return {
        "id": record.id,
        "advisory": record.advisory,
        "revision": record.revision,
        "title": document.get("title", ""),
        "severity": document.get("severity", ""),
        "state": document.get("state", ""),
        "digests": list(document.get("digests") or []),
        "fixed_in": document.get("fixed_in"),
        "read": record.read_at is not None,
        "created_at": timestamp(record.created_at),
    }


def outbox_message(record: OutboxRecord) -> JSON:
    return {
        "id": record.id,
        "channel": record.channel,
        "key": record.key,
        "state": record.state,
        "attempts": record.attempts,
        "last_error": record.last_error,
        "next_attempt_at": timestamp(record.next_attempt_at),
        "created_at": timestamp(record.created_at),
        "updated_at": timestamp(record.updated_at),
    }
