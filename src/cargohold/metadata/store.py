"""The ``MetadataStore`` protocol, grouped by aggregate.

The metadata store is the one source of truth for names: which repositories exist, which
blobs each may serve, which manifests and tags it has, and which uploads are in
progress. Each method is one transaction; methods that change several rows change all or
none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cargohold.metadata.outbox import OutboxMessage


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    repository: str
    digest: str
    media_type: str
    content: bytes
    artifact_type: str | None = None
    subject: str | None = None
    annotations: str | None = None  # JSON text


@dataclass(frozen=True, slots=True)
class UploadRecord:
    id: str
    repository: str
    size: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Reference:
    """Something a manifest needs: a blob or a child manifest, by digest.

    ``size`` is the size the manifest's descriptor declares (``None``: not checked);
    a child manifest's size is the length of its stored bytes.
    """

    digest: str
    kind: str  # "blob" | "manifest"
    size: int | None = None


@dataclass(frozen=True, slots=True)
class SizeMismatch:
    """A reference that is present, but with another size than declared."""

    reference: Reference
    stored: int


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A blob row in state ``deleting``: its bytes are being deleted by its owner.

    ``lease`` is the row's ``touched_at``: when the current owner took it. Only the
    owner (who set that value) deletes the bytes and drops the row, each conditional on
    the row still holding ``lease``; a tombstone older than the lease may be taken over.
    """

    digest: str
    size: int
    lease: float


class BlobIndex(Protocol):
    async def linked_size(self, repository: str, digest: str) -> int | None:
        """Size of ``digest`` if ``repository`` may serve it, else ``None``."""
        ...

    async def unlink(self, repository: str, digest: str) -> bool:
        """Remove the link; ``False`` if there was none."""
        ...

    async def link_existing(self, repository: str, digest: str) -> int | None:
        """Link a blob the registry holds (state ``present``); its size, or ``None``.

        Touches the blob and the link (GC fence): a blob GC is deleting is unknown.
        """
        ...

    async def forget(self, digests: list[str], now: float) -> list[Tombstone]:
        """Drop the links of those blobs and turn their rows into tombstones.

        Used by fsck after bytes went missing or were damaged: the caller deletes the
        bytes (if any) and drops the tombstones.
        """
        ...

    async def all_records(self) -> dict[str, int]:
        """Every blob in state ``present`` with its size (fsck)."""
        ...


class UploadIndex(Protocol):
    async def create(self, upload_id: str, repository: str) -> None: ...

    async def get(self, upload_id: str) -> UploadRecord | None: ...

    async def set_size(self, upload_id: str, *, expected: int, size: int) -> bool:
        """Advance the size if it is still ``expected``; ``False`` on a lost race."""
        ...

    async def claim(self, upload_id: str, digest: str, size: int) -> Tombstone | None:
        """Fence ``digest`` against GC before the upload's bytes move under it.

        Inserts the blob row (``pending``) or touches it, and marks the session as
        committing ``digest``: GC takes no blob an open session claims. Returns the
        tombstone instead when GC is deleting that content (nothing is claimed then).
        """
        ...

    async def finish(
        self, upload_id: str, repository: str, digest: str, size: int
    ) -> bool:
        """Delete the session, record the blob ``present`` and link it, atomically.

        ``False`` (and nothing written) if the blob row is a tombstone by now.
        """
        ...

    async def delete(self, upload_id: str) -> None: ...

    async def older_than(self, timestamp: float) -> list[UploadRecord]: ...


class ManifestIndex(Protocol):
    async def by_tag(self, repository: str, tag: str) -> ManifestRecord | None: ...

    async def by_digest(
        self, repository: str, digest: str
    ) -> ManifestRecord | None: ...

    async def put(
        self,
        record: ManifestRecord,
        *,
        tag: str | None,
        references: list[Reference],
        actor: str = "system",
        jobs: Sequence[OutboxMessage] = (),
    ) -> list[Reference | SizeMismatch]:
        """Store the manifest (and move ``tag``) if every reference is present.

        ``jobs`` (signing, describing: ``registry/jobs.py``) are enqueued in the same
        transaction, and only when the manifest is stored (keys already queued are
        skipped, so a repeated push queues nothing new).

        A tag move (created, or pointed elsewhere) is written to the tag history with
        ``actor`` (a principal's subject), and advisories whose tag globs match follow
        it, in the same transaction.

        Present means linked in (a blob) or stored in (a child manifest) the record's
        repository, with the reference's ``size`` when it has one. Returns what stops
        it, in the order of ``references``: each reference that is missing, and a
        ``SizeMismatch`` for each one present with another size. Checked in the same
        transaction as the write; when anything is returned, nothing is written.
        """
        ...

    async def delete(
        self, repository: str, digest: str, *, actor: str = "system"
    ) -> bool:
        """Delete the manifest and every tag pointing at it (each in tag history)."""
        ...

    async def delete_tag(
        self, repository: str, tag: str, *, actor: str = "system"
    ) -> bool:
        """Delete the tag (written to tag history with ``actor``)."""
        ...

    async def tags(
        self, repository: str, *, last: str | None, limit: int | None
    ) -> list[str]:
        """Tags in lexical order after ``last``."""
        ...

    async def referrers(
        self, repository: str, subject: str
    ) -> list[ManifestRecord]: ...

    async def dangling(self) -> list[tuple[str, str, str]]:
        """(repository, manifest, target) where the target blob or child is missing."""
        ...

    async def reachable(
        self, repository: str, tag_allowed: Callable[[str], bool]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Manifests and blobs reached from the tags ``tag_allowed`` accepts.

        Reach follows index children and referrers (manifests whose subject is reached),
        to a bounded depth; blobs are those the reached manifests reference.
        """
        ...


class RepositoryIndex(Protocol):
    async def exists(self, repository: str) -> bool: ...

    async def names(self, *, last: str | None, limit: int | None) -> list[str]:
        """Repository names in lexical order after ``last``."""
        ...


class GarbageIndex(Protocol):
    """What ``cargohold gc`` asks of the store (``registry/gc.py`` has the protocol).

    Every ``mark``/``drop`` method locks the rows it decides about and re-checks its
    condition on them in the same transaction, so a concurrent upload, mount or manifest
    PUT (which update those rows) either is seen or sees the tombstone.
    """

    async def dead_links(self, cutoff: float) -> list[tuple[str, str]]:
        """(repository, digest) links untouched since ``cutoff`` unused by manifests."""
        ...

    async def drop_links(
        self, links: list[tuple[str, str]], cutoff: float
    ) -> list[tuple[str, str]]:
        """Delete those of ``links`` still dead; returns them."""
        ...

    async def unused_blobs(self, cutoff: float) -> dict[str, int]:
        """Blobs untouched since ``cutoff`` nothing links, references or claims."""
        ...

    async def mark_unused(
        self, digests: list[str], cutoff: float, now: float
    ) -> list[Tombstone]:
        """Turn those of ``digests`` still unused into tombstones leased at ``now``."""
        ...

    async def mark_orphans(self, digests: list[str], now: float) -> list[Tombstone]:
        """Tombstones (size 0) for those of ``digests`` that have no row at all."""
        ...

    async def known(self) -> set[str]:
        """Every digest with a row, whatever its state."""
        ...

    async def tombstones(self) -> list[Tombstone]: ...

    async def take_over(
        self, tombstones: list[Tombstone], now: float
    ) -> list[Tombstone]:
        """Re-lease those tombstones still holding their lease; returns the new ones."""
        ...

    async def drop(self, tombstones: list[Tombstone]) -> list[Tombstone]:
        """Delete the rows of tombstones still holding their lease; returns those."""
        ...

    async def collectable(self, cutoff: float, *, untagged: bool) -> dict[str, int]:
        """Blobs (with sizes) a GC with this ``cutoff`` frees, tombstones included.

        What no young link, claim or manifest keeps: with ``untagged``, only manifests
        a tag reaches (or touched since ``cutoff``) keep their blobs.
        """
        ...

    async def unreachable_manifests(self, cutoff: float) -> list[tuple[str, str, int]]:
        """(repository, digest, size) of manifests no tag reaches, untouched since."""
        ...

    async def delete_unreachable(
        self, repository: str, digests: list[str], cutoff: float
    ) -> list[str]:
        """Delete those manifests if still unreachable and untouched; returns them."""
        ...


class MetadataStore(Protocol):
    blobs: BlobIndex
    uploads: UploadIndex
    manifests: ManifestIndex
    repositories: RepositoryIndex
    garbage: GarbageIndex

    async def close(self) -> None: ...
