"""``AdvisoryService``: publishing advisories, who they affect, and telling them.

Who may do what:

* administrators publish and update advisories, and see every advisory and its
  affected identities;
* any other authenticated caller sees an advisory only if it covers a repository they
  may pull (the same decision as ``/token``, ignoring tag limits), and never the
  affected identities (who pulled what is private to administrators).

Every revision is kept with its actor; publishing and every update enqueue, in the
same transaction, the ``fanout`` outbox message ``fanout:<id>:<revision>``, which the
outbox worker hands to ``fan_out``. Manifest GET/HEAD answers carry a ``Warning``
header for each advisory neither ``resolved`` nor ``draft`` that covers the manifest
(``WarningBoard``). A ``draft`` (``open_draft``: what the vulnerability matching
proposes) is not published: no fan-out, no Warning, visible to administrators only,
until an administrator updates it to another state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from cargohold.auth.policy import Principal
from cargohold.metadata.advisories import (
    AdvisoryRecord,
    AdvisoryStore,
    AffectedDigest,
    AffectedIdentity,
    Notice,
    RevisionRecord,
)
from cargohold.metadata.outbox import EMAIL, FANOUT, OutboxMessage
from cargohold.oci.errors import Denied
from cargohold.registry.access import AccessService
from cargohold.registry.admin import Conflict, InvalidRequest, NotFound
from cargohold.registry.advisory_document import (
    DRAFT,
    merge,
    parse_document,
    warning_value,
    within_limit,
)
from cargohold.registry.audit import AuditTrail
from cargohold.registry.events import (
    ADVISORY_PUBLISHED,
    ADVISORY_UPDATED,
    NULL_SINK,
    EventSink,
    OutboxSink,
    RegistryEvent,
)
from cargohold.settings import AdvisorySettings

log = logging.getLogger(__name__)

DAY = 86_400.0
SYSTEM = "system"  # the actor of what the registry itself does
ANONYMOUS_PREFIX = "anonymous"


class HasPayload(Protocol):
    """What ``fan_out`` needs of an outbox item (``registry/outbox.OutboxItem``)."""

    @property
    def payload(self) -> Mapping[str, Any]: ...


def iso(value: float) -> str:
    moment = datetime.fromtimestamp(value, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def fanout_message(advisory: str, revision: int) -> OutboxMessage:
    return OutboxMessage(
        key=f"fanout:{advisory}:{revision}",
        channel=FANOUT,
        payload={"advisory": advisory, "revision": revision},
    )


def fanout_of(document: Mapping[str, Any], revision: int) -> list[OutboxMessage]:
    """The fan-out a revision enqueues: none while it is a draft."""
    if document["state"] == DRAFT:
        return []
    return [fanout_message(str(document["id"]), revision)]


class WarningBoard:
    """An in-process map (repository, digest) -> ``Warning`` values.

    Refreshed when the store's change marker moves, checked at most every
    ``refresh_seconds``: another process's new advisory shows within that window.
    """

    def __init__(
        self,
        store: AdvisoryStore,
        refresh_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._next_check = float("-inf")
        self._marker: tuple[object, ...] | None = None
        self._map: dict[tuple[str, str], tuple[str, ...]] = {}
        self._refreshing = False

    async def lookup(self, repository: str, digest: str) -> tuple[str, ...]:
        """The warnings for a manifest; a failed refresh keeps the last map (a pull
        never fails because of advisories)."""
        if self._clock() >= self._next_check and not self._refreshing:
            try:
                await self.refresh()
            except Exception:
                log.warning("advisory warnings not refreshed", exc_info=True)
        return self._map.get((repository, digest), ())

    async def refresh(self) -> None:
        self._refreshing = True
        try:
            self._next_check = self._clock() + self._refresh_seconds
            marker = await self._store.marker()
            if marker == self._marker:
                return
            rows = await self._store.warnings()
            grouped: dict[tuple[str, str], list[str]] = {}
            for row in rows:
                grouped.setdefault((row.repository, row.digest), []).append(
                    warning_value(row.advisory, row.title, row.fixed_in)
                )
            self._map = {k: tuple(within_limit(v)) for k, v in grouped.items()}
            self._marker = marker
        finally:
            self._refreshing = False


class AdvisoryService:
    def __init__(
        self,
        store: AdvisoryStore,
        access: AccessService,
        settings: AdvisorySettings,
        *,
        audit: AuditTrail | None = None,
        events: EventSink = NULL_SINK,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._access = access
        self._audit = audit
        self._settings = settings
        self._events = events
        self._clock = clock
        self.warnings = WarningBoard(store, settings.warning_refresh_seconds)

    @staticmethod
    def _require_admin(actor: Principal) -> None:
        if not actor.is_admin:
            raise Denied("only administrators may do this with advisories")

    def _record(
        self, actor: Principal, action: str, record: AdvisoryRecord, client: str
    ) -> None:
        if self._audit is not None:
            self._audit.record(
                actor.subject,
                action,
                f"advisory:{record.id}",
                client=client,
                detail=f'{{"revision": {record.revision}}}',
            )

    async def publish(
        self, actor: Principal, data: object, *, client: str = ""
    ) -> AdvisoryRecord:
        """Publish revision 1.

        Raises:
            Denied: not an administrator.
            InvalidRequest: the document is not valid.
            Conflict: an advisory with that id exists.
        """
        self._require_admin(actor)
        document = parse_document(data).to_json()
        record = await self._store.create(
            document,
            actor=actor.subject,
            now=self._clock(),
            outbox=fanout_of(document, 1),
        )
        if record is None:
            raise Conflict(f"advisory {document['id']!r} exists; update it instead")
        self._record(actor, "advisory.publish", record, client)
        await self.warnings.refresh()
        return record

    async def update(
        self, actor: Principal, advisory: str, changes: object, *, client: str = ""
    ) -> AdvisoryRecord:
        """Publish the next revision: the current document with ``changes`` applied.

        Raises:
            Denied, InvalidRequest, NotFound; Conflict on a concurrent update.
        """
        self._require_admin(actor)
        current = await self._existing(advisory)
        document = merge(parse_document(current.document), changes).to_json()
        record = await self._store.update(
            document,
            expected_revision=current.revision,
            actor=actor.subject,
            now=self._clock(),
            outbox=fanout_of(document, current.revision + 1),
        )
        if record is None:
            raise Conflict(f"advisory {advisory!r} changed meanwhile; try again")
        self._record(actor, "advisory.update", record, client)
        await self.warnings.refresh()
        return record

    async def open_draft(self, data: Mapping[str, Any]) -> AdvisoryRecord | None:
        """Save a draft advisory as the registry (``system``); None if an advisory
        with that id exists (a draft is opened once per id).

        Raises:
            InvalidRequest: the document is not valid or not a draft.
        """
        document = parse_document(data).to_json()
        if document["state"] != DRAFT:
            raise InvalidRequest("open_draft saves drafts only")
        record = await self._store.create(
            document, actor=SYSTEM, now=self._clock(), outbox=[]
        )
        if record is not None and self._audit is not None:
            self._audit.record(
                SYSTEM,
                "advisory.draft",
                f"advisory:{record.id}",
                client="",
                detail='{"revision": 1}',
            )
        return record

    async def _existing(self, advisory: str) -> AdvisoryRecord:
        record = await self._store.get(advisory)
        if record is None:
            raise NotFound(f"no advisory {advisory[:80]!r}")
        return record

    async def _visible(self, actor: Principal, record: AdvisoryRecord) -> bool:
        if actor.is_admin:
            return True
        if record.state == DRAFT:
            return False
        repositories = sorted(
            {str(a["repository"]) for a in record.document.get("affected") or ()}
        )
        return bool(await self._access.pullable(actor, repositories))

    async def visible(self, actor: Principal) -> list[AdvisoryRecord]:
        """Every advisory the caller may see, newest first."""
        return [r for r in await self._store.all() if await self._visible(actor, r)]

    async def get(
        self, actor: Principal, advisory: str
    ) -> tuple[AdvisoryRecord, list[AffectedDigest]]:
        """The advisory and the digests it covers now (``NotFound`` if not visible)."""
        record = await self._existing(advisory)
        if not await self._visible(actor, record):
            raise NotFound(f"no advisory {advisory[:80]!r}")
        return record, await self._store.digests(advisory)

    async def revisions(self, actor: Principal, advisory: str) -> list[RevisionRecord]:
        await self.get(actor, advisory)
        return await self._store.revisions(advisory)

    async def affected(self, actor: Principal, advisory: str) -> list[AffectedIdentity]:
        """Who pulled a covered digest within the window (administrators only)."""
        self._require_admin(actor)
        await self._existing(advisory)
        return await self._store.affected(advisory, self._since())

    def _since(self) -> float:
        return self._clock() - self._settings.affected_window_days * DAY

    async def fan_out(self, item: HasPayload) -> None:
        """Tell everyone one revision affects: inbox notices, emails, events.

        Idempotent: notices are inserted once per (identity, advisory, revision),
        emails keyed per (advisory, revision, address), events have stable ids.
        """
        advisory = str(item.payload["advisory"])
        revision = int(item.payload["revision"])
        published = await self._store.revision(advisory, revision)
        if published is None:
            log.warning(
                "fan-out of unknown advisory revision %s/%s", advisory, revision
            )
            return
        document = published.document
        affected = await self._store.affected(advisory, self._since())
        now = self._clock()
        summary = {
            "advisory": advisory,
            "title": document["title"],
            "severity": document["severity"],
            "state": document["state"],
            "fixed_in": document.get("fixed_in"),
        }
        notices = _notices(affected, summary, revision)
        emails = _emails(affected, advisory, revision, document)
        events = _events(affected, summary, published, now)
        if isinstance(self._events, OutboxSink):
            # The webhook deliveries go in the transaction of the notices and emails:
            # all of them exist, or none and the fan-out is retried. (Emitted after the
            # commit instead, a failure there would lose them: emit never raises.)
            hooks = await self._events.outbox_messages(events)
            new = await self._store.deliver(notices, [*emails, *hooks], now=now)
        else:
            new = await self._store.deliver(notices, emails, now=now)
            await self._events.emit(events)
        log.info(
            "advisory %s revision %d: %d identities, %d new notices, %d emails, "
            "%d organizations",
            advisory,
            revision,
            len(affected),
            new,
            len(emails),
            len(events),
        )


def _notices(
    affected: list[AffectedIdentity], summary: Mapping[str, Any], revision: int
) -> list[Notice]:
    digests: dict[str, set[str]] = {}
    for entry in affected:
        if entry.identity.startswith(ANONYMOUS_PREFIX):
            continue  # nobody can read an anonymous inbox
        digests.setdefault(entry.identity, set()).update(i.digest for i in entry.images)
    return [
        Notice(
            identity,
            str(summary["advisory"]),
            revision,
            {**summary, "digests": sorted(found)},
        )
        for identity, found in sorted(digests.items())
    ]


def _emails(
    affected: list[AffectedIdentity],
    advisory: str,
    revision: int,
    document: Mapping[str, Any],
) -> list[OutboxMessage]:
    images: dict[str, list[dict[str, str]]] = {}
    for entry in affected:
        if entry.contact is None or entry.identity.startswith(ANONYMOUS_PREFIX):
            continue
        images.setdefault(entry.contact, []).extend(
            {
                "identity": entry.identity,
                "repository": image.repository,
                "digest": image.digest,
                "last_pull": iso(image.last_pull),
            }
            for image in entry.images
        )
    return [
        OutboxMessage(
            key=f"email:{advisory}:{revision}:{address}",
            channel=EMAIL,
            payload={
                "to": address,
                "advisory": advisory,
                "revision": revision,
                "document": dict(document),
                "images": pulled,
            },
        )
        for address, pulled in sorted(images.items())
    ]


def _events(
    affected: list[AffectedIdentity],
    summary: Mapping[str, Any],
    published: RevisionRecord,
    now: float,
) -> list[RegistryEvent]:
    by_org: dict[str, set[str]] = {}
    for entry in affected:
        if entry.organization is not None:
            by_org.setdefault(entry.organization, set()).update(
                i.digest for i in entry.images
            )
    kind = ADVISORY_PUBLISHED if published.revision == 1 else ADVISORY_UPDATED
    return [
        RegistryEvent(
            id=f"advisory:{published.advisory}:{published.revision}:{organization}",
            type=kind,
            at=now,
            actor=published.actor,
            repository=None,
            organization=organization,
            data={
                **summary,
                "revision": published.revision,
                "digests": sorted(digests),
            },
        )
        for organization, digests in sorted(by_org.items())
    ]
