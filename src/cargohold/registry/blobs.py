"""``BlobService``: reading, mounting and unlinking blobs in a repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from cargohold.metadata.store import MetadataStore
from cargohold.oci.digest import Digest
from cargohold.oci.errors import BlobUnknown
from cargohold.oci.names import RepositoryName
from cargohold.storage.base import BlobNotFound, BlobStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Blob:
    digest: Digest
    size: int
    path: Path | None = None  # serve this file directly when set
    redirect: str | None = None  # or send the client here


class BlobService:
    def __init__(self, meta: MetadataStore, store: BlobStore) -> None:
        self._meta = meta
        self._store = store

    async def head(self, repo: RepositoryName, digest: Digest) -> Blob:
        """The blob's size if ``repo`` links it. Raises ``BlobUnknown``."""
        size = await self._meta.blobs.linked_size(repo.value, str(digest))
        if size is None:
            raise BlobUnknown(str(digest))
        return Blob(digest, size)

    async def get(self, repo: RepositoryName, digest: Digest) -> Blob:
        """Where to read a linked blob from. Raises ``BlobUnknown``."""
        blob = await self.head(repo, digest)
        redirect = await self._store.redirect_url(digest)
        if redirect is not None:
            return Blob(digest, blob.size, redirect=redirect)
        try:
            info = await self._store.stat(digest)
        except BlobNotFound:
            info = None
        if info is None or info.size != blob.size:
            # Never serve bytes that cannot match the digest the client will check.
            log.error(
                "blob missing or damaged in storage; run cargohold fsck",
                repository=repo.value,
                digest=str(digest),
            )
            raise BlobUnknown(str(digest))
        return Blob(digest, blob.size, path=info.path)

    def stream(
        self, blob: Blob, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        return self._store.open(blob.digest, start=start, end=end)

    async def mount(
        self, repo: RepositoryName, digest: Digest, source: RepositoryName | None
    ) -> Blob | None:
        """Link an existing blob into ``repo`` without upload; ``None`` if not possible.

        With ``source`` the blob must be linked there; without it, any blob the registry
        holds may be mounted (spec.md, "Mounting a blob from another repository").
        """
        if (
            source is not None
            and await self._meta.blobs.linked_size(source.value, str(digest)) is None
        ):
            return None
        size = await self._meta.blobs.link_existing(repo.value, str(digest))
        return None if size is None else Blob(digest, size)

    async def delete(self, repo: RepositoryName, digest: Digest) -> None:
        """Unlink the blob from ``repo``; its bytes go at the next GC if unused."""
        if not await self._meta.blobs.unlink(repo.value, str(digest)):
            raise BlobUnknown(str(digest))
