"""The ``AdvisoryStore`` protocol: advisories, their revisions and affected digests,
who pulled them, tag history, and the inbox notices an advisory's fan-out writes.

Documents are stored as JSON as published (validated by the registry layer first,
``registry/advisory_document.py``). The store resolves tag globs to digests itself, in
the transaction that publishes a revision, and again in the transaction that moves a
tag (``retag_in``), so an advisory's digests never lag a committed tag move.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol

from cargohold.metadata.outbox import OutboxMessage
from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid


@dataclass(frozen=True, slots=True)
class Coverage:
    """What a document covers, read from its JSON (``affected``, ``fixed_in``)."""

    # (repository, named digests, tag globs) per entry of ``affected``
    entries: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    fixed_repository: str | None
    fixed_tag: str | None
    fixed_digest: str | None

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> Coverage:
        entries = tuple(
            (
                str(e["repository"]),
                tuple(e.get("digests") or ()),
                tuple(e.get("tags") or ()),
            )
            for e in document.get("affected") or ()
        )
        repository, tag, digest = _fixed(document.get("fixed_in"))
        return cls(entries, repository, tag, digest)

    def globs(self, repository: str) -> tuple[str, ...]:
        return tuple(g for r, _, tags in self.entries if r == repository for g in tags)

    def matching_glob(self, repository: str, tag: str) -> bool:
        return any(fnmatchcase(tag, g) for g in self.globs(repository))


def _fixed(text: object) -> tuple[str | None, str | None, str | None]:
    """(repository, tag, digest) of a valid ``fixed_in`` (see advisory_document)."""
    if not isinstance(text, str) or not text:
        return None, None, None
    if "@" in text:
        repository, _, digest = text.partition("@")
        return repository, None, digest
    try:
        return None, None, str(Digest.parse(text))
    except DigestInvalid:
        pass
    head, separator, tag = text.rpartition(":")
    return (head if separator else None), tag, None


@dataclass(frozen=True, slots=True)
class AdvisoryRecord:
    id: str
    revision: int
    title: str
    severity: str
    state: str
    document: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    advisory: str
    revision: int
    at: float
    actor: str
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AffectedDigest:
    repository: str
    digest: str
    via_tag: str | None


@dataclass(frozen=True, slots=True)
class PulledImage:
    repository: str
    digest: str
    last_pull: float


@dataclass(frozen=True, slots=True)
class AffectedIdentity:
    """One identity (in one organization) that pulled affected digests."""

    identity: str
    organization: str | None
    contact: str | None  # the user's email, else the organization's security contact
    images: tuple[PulledImage, ...]

    @property
    def last_pull(self) -> float:
        return max(i.last_pull for i in self.images)


@dataclass(frozen=True, slots=True)
class Notice:
    identity: str
    advisory: str
    revision: int
    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TagMove:
    repository: str
    tag: str
    from_digest: str | None
    to_digest: str | None
    at: float
    actor: str


@dataclass(frozen=True, slots=True)
class WarningRow:
    repository: str
    digest: str
    advisory: str
    title: str
    fixed_in: str | None


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


class AdvisoryStore(Protocol):
    async def create(
        self,
        document: Mapping[str, Any],
        *,
        actor: str,
        now: float,
        outbox: Sequence[OutboxMessage],
    ) -> AdvisoryRecord | None:
        """Publish revision 1, resolve its digests and enqueue ``outbox``, atomically.

        ``None`` (nothing written) if an advisory with that id exists.
        """
        ...

    async def update(
        self,
        document: Mapping[str, Any],
        *,
        expected_revision: int,
        actor: str,
        now: float,
        outbox: Sequence[OutboxMessage],
    ) -> AdvisoryRecord | None:
        """Publish revision ``expected_revision + 1`` of an existing advisory.

        Re-resolves its digests (named ones, and what its tag globs point at now;
        digests once resolved from a glob that is still in the document stay) and
        enqueues ``outbox``, atomically. ``None`` (nothing written) if the advisory's
        current revision is no longer ``expected_revision`` (a concurrent update).
        """
        ...

    async def get(self, advisory: str) -> AdvisoryRecord | None: ...

    async def all(self) -> list[AdvisoryRecord]:
        """Every advisory, newest first."""
        ...

    async def revisions(self, advisory: str) -> list[RevisionRecord]:
        """Every revision, oldest first (empty if there is no such advisory)."""
        ...

    async def revision(self, advisory: str, revision: int) -> RevisionRecord | None: ...

    async def digests(self, advisory: str) -> list[AffectedDigest]:
        """The (repository, digest) pairs the advisory covers now, sorted."""
        ...

    async def affected(self, advisory: str, since: float) -> list[AffectedIdentity]:
        """Identities that pulled a covered digest at or after ``since`` (one query).

        One entry per (identity, organization of the pulls), sorted by identity.
        """
        ...

    async def deliver(
        self, notices: Sequence[Notice], outbox: Sequence[OutboxMessage], *, now: float
    ) -> int:
        """Insert the notices not yet there and enqueue ``outbox``, in one transaction.

        Returns how many notices were new.
        """
        ...

    async def warnings(self) -> list[WarningRow]:
        """Every covered (repository, digest) of advisories neither ``resolved``
        nor ``draft``."""
        ...

    async def marker(self) -> tuple[object, ...]:
        """A cheap value that changes whenever ``warnings`` may answer differently."""
        ...

    async def tag_history(
        self, repository: str, tag: str, *, limit: int
    ) -> list[TagMove]:
        """A tag's moves, newest first, at most ``limit``."""
        ...
