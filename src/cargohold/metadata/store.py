"""The ``MetadataStore`` protocol, grouped by aggregate.

The metadata store is the one source of truth for names: which repositories exist, which
blobs each may serve, which manifests and tags it has, and which uploads are in
progress. Each method is one transaction; methods that change several rows change all or
none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


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


class BlobIndex(Protocol):
    async def linked_size(self, repository: str, digest: str) -> int | None:
        """Size of ``digest`` if ``repository`` may serve it, else ``None``."""
        ...

    async def unlink(self, repository: str, digest: str) -> bool:
        """Remove the link; ``False`` if there was none."""
        ...

    async def link_existing(self, repository: str, digest: str) -> int | None:
        """Link a blob the registry already holds; its size, or ``None`` if unknown."""
        ...

    async def forget_unreferenced(self, digests: list[str]) -> list[str]:
        """Delete the records of those ``digests`` nothing links or references.

        Checked and deleted in one transaction; returns the digests forgotten.
        """
        ...

    async def forget(self, digests: list[str]) -> None:
        """Delete the blob records and their links.

        Used by GC, and by fsck after bytes went missing.
        """
        ...

    async def all_records(self) -> dict[str, int]:
        """Every known blob with its size (fsck)."""
        ...


class UploadIndex(Protocol):
    async def create(self, upload_id: str, repository: str) -> None: ...

    async def get(self, upload_id: str) -> UploadRecord | None: ...

    async def set_size(self, upload_id: str, *, expected: int, size: int) -> bool:
        """Advance the size if it is still ``expected``; ``False`` on a lost race."""
        ...

    async def finish(
        self, upload_id: str, repository: str, digest: str, size: int
    ) -> None:
        """Delete the session, record the blob and link it, in one transaction."""
        ...

    async def delete(self, upload_id: str) -> None: ...

    async def older_than(self, timestamp: float) -> list[UploadRecord]: ...


class ManifestIndex(Protocol):
    async def by_tag(self, repository: str, tag: str) -> ManifestRecord | None: ...

    async def by_digest(
        self, repository: str, digest: str
    ) -> ManifestRecord | None: ...

    async def put(
        self, record: ManifestRecord, *, tag: str | None, references: list[Reference]
    ) -> list[Reference | SizeMismatch]:
        """Store the manifest (and move ``tag``) if every reference is present.

        Present means linked in (a blob) or stored in (a child manifest) the record's
        repository, with the reference's ``size`` when it has one. Returns what stops
        it, in the order of ``references``: each reference that is missing, and a
        ``SizeMismatch`` for each one present with another size. Checked in the same
        transaction as the write; when anything is returned, nothing is written.
        """
        ...

    async def delete(self, repository: str, digest: str) -> bool:
        """Delete the manifest and every tag pointing at it."""
        ...

    async def delete_tag(self, repository: str, tag: str) -> bool: ...

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


class MetadataStore(Protocol):
    blobs: BlobIndex
    uploads: UploadIndex
    manifests: ManifestIndex
    repositories: RepositoryIndex

    async def close(self) -> None: ...
