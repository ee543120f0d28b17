"""What happened in the registry, for whoever listens (webhooks, today).

Services emit ``RegistryEvent``s after their change is committed; an ``EventSink``
(``registry/webhooks.py``: matches the organization's webhooks and writes their
deliveries to the outbox) takes them. ``NULL_SINK`` listens to nothing.

Event types: ``push`` (a manifest stored), ``delete`` (a manifest or tag deleted),
``tag.moved`` (a tag created or pointed elsewhere), ``pull`` (a manifest pulled; emitted
in batches when pull events are flushed), ``advisory.published`` and
``advisory.updated`` (for each organization an advisory's revision affects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cargohold.metadata.outbox import OutboxMessage

PUSH = "push"
PULL = "pull"
DELETE = "delete"
TAG_MOVED = "tag.moved"
ADVISORY_PUBLISHED = "advisory.published"
ADVISORY_UPDATED = "advisory.updated"
EVENT_TYPES = (PUSH, PULL, DELETE, TAG_MOVED, ADVISORY_PUBLISHED, ADVISORY_UPDATED)


def organization_of(repository: str) -> str:
    """The namespace a repository lives in: its first path component."""
    return repository.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One event. ``id`` is unique per event and stable when the same event is emitted
    again (an advisory's fan-out retried), so deliveries are made once per id."""

    id: str
    type: str  # one of EVENT_TYPES
    at: float
    actor: str  # the subject that caused it ("user:alice", "anonymous:…", "system")
    repository: str | None  # None for advisories
    # Whose webhooks hear it (besides registry-wide ones); None: registry-wide only.
    organization: str | None
    data: Mapping[str, object] = field(default_factory=dict)  # JSON-serialisable


class EventSink(Protocol):
    async def wants(self, event_type: str) -> bool:
        """Whether anyone listens to ``event_type`` now: an emitter may skip building
        events nobody would hear (a pull's, on the hot path). Never raises."""
        ...

    async def emit(self, events: Sequence[RegistryEvent]) -> None:
        """Take ``events`` for delivery; never raises for a delivery problem."""
        ...


@runtime_checkable
class OutboxSink(EventSink, Protocol):
    """A sink whose deliveries are outbox messages the emitter can write itself.

    A service that decides events inside its own transaction (the advisory fan-out)
    enqueues these messages in that transaction, so the events exist exactly when the
    decision committed, and a failure here fails the decision (which is retried).
    """

    async def outbox_messages(
        self, events: Sequence[RegistryEvent]
    ) -> list[OutboxMessage]:
        """The messages that deliver ``events``; raises if they cannot be worked out."""
        ...


class _NullSink:
    async def wants(self, event_type: str) -> bool:  # noqa: ARG002
        return False

    async def emit(self, events: Sequence[RegistryEvent]) -> None:  # noqa: ARG002
        return None


NULL_SINK: EventSink = _NullSink()
