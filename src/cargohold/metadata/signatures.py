"""The ``SignatureStore`` protocol: signatures of the registry signature API extension.

Rows of ``image_signatures`` (see ``schema.py``): containers/image's "atomic" simple
signatures on a manifest of a repository, the registry's own (``key_id`` set) and
those clients with push rights stored (``key_id`` None). The signing job also reads,
through this store, what it needs of the manifests it signs, and queues ``sign`` jobs
for ``cargohold signing resign``. Each method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cargohold.metadata.outbox import OutboxMessage


@dataclass(frozen=True, slots=True)
class StoredSignature:
    id: int
    repository: str
    digest: str
    content: bytes
    content_digest: str  # sha256:<hex> of content
    key_id: str | None  # the registry key that made it; None for a client's
    created_by: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    digest: str
    media_type: str
    content: bytes
    subject: str | None
    tags: tuple[str, ...]  # by ``manifests``; empty from ``manifest``


class SignatureStore(Protocol):
    async def add(
        self,
        repository: str,
        digest: str,
        content: bytes,
        *,
        key_id: str | None,
        created_by: str,
        now: float,
    ) -> bool:
        """Store a signature of manifest ``digest`` in ``repository``; ``False``
        (and nothing changed) when the same content is already stored there."""
        ...

    async def for_manifest(self, repository: str, digest: str) -> list[StoredSignature]:
        """The signatures of ``digest`` in ``repository``, oldest first."""
        ...

    async def signed_by(self, repository: str, digest: str, key_id: str) -> bool:
        """Whether the registry key ``key_id`` already signed ``digest`` there."""
        ...

    async def manifest(self, repository: str, digest: str) -> ManifestInfo | None:
        """The manifest ``digest`` stored in ``repository``, or None."""
        ...

    async def manifests(self, repository: str) -> list[ManifestInfo]:
        """Every manifest of ``repository`` with its tags, by digest."""
        ...

    async def queue(self, messages: Sequence[OutboxMessage], *, now: float) -> int:
        """Enqueue ``messages`` (existing keys skipped); how many were new."""
        ...

    async def queue_counts(self, channel: str) -> dict[str, int]:
        """Outbox rows of ``channel`` by state (pending, done, dead)."""
        ...
