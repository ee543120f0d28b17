"""``BlobService``: reading, mounting and unlinking blobs in a repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from cargohold.auth.policy import DELETE, PULL, PUSH
from cargohold.metadata.store import MetadataStore
from cargohold.oci.digest import Digest
from cargohold.oci.errors import BlobUnknown
from cargohold.registry.limits import RepositoryAccess, TagLimits
from cargohold.storage.base import BlobNotFound, BlobStore, LocalFile

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Blob:
    digest: Digest
    size: int
    local: LocalFile | None = None  # let the server send this file itself when set
    redirect: str | None = None  # or send the client here


class BlobService:
    """Every method takes the caller's ``RepositoryAccess`` and checks it first."""

    def __init__(
        self, meta: MetadataStore, store: BlobStore, limits: TagLimits
    ) -> None:
        self._meta = meta
        self._store = store
        self._limits = limits

    async def head(self, access: RepositoryAccess, digest: Digest) -> Blob:
        """The blob's size if the repository links it. Raises ``BlobUnknown``."""
        repo = access.require(PULL)
        await self._limits.require_blob(access, digest)
        size = await self._meta.blobs.linked_size(repo.value, str(digest))
        if size is None:
            raise BlobUnknown(str(digest))
        return Blob(digest, size)

    async def get(self, access: RepositoryAccess, digest: Digest) -> Blob:
        """Where to read a linked blob from. Raises ``BlobUnknown``."""
        blob = await self.head(access, digest)
        repo = access.repository
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
        return Blob(digest, blob.size, local=info.local)

    def stream(
        self, blob: Blob, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        return self._store.open(blob.digest, start=start, end=end)

    async def mount(
        self,
        access: RepositoryAccess,
        digest: Digest,
        source_access: RepositoryAccess | None,
    ) -> Blob | None:
        """Link an existing blob without upload; ``None`` if not possible or allowed.

        With a source the caller must be able to read the blob there, under the same
        rules as a pull; without one, any blob the registry holds may be mounted
        (spec.md, "Mounting a blob from another repository"), which only an
        administrator may ask: anyone else could link private content they only know
        the digest of. Refused mounts fall back to an upload, as the spec allows.
        """
        repo = access.require(PUSH)
        if source_access is None:
            allowed = access.principal.is_admin
        else:
            allowed = await self._readable(source_access, digest)
        if not allowed:
            return None
        size = await self._meta.blobs.link_existing(repo.value, str(digest))
        return None if size is None else Blob(digest, size)

    async def _readable(self, access: RepositoryAccess, digest: Digest) -> bool:
        """Whether the caller could pull ``digest`` from ``access``'s repository."""
        return (
            PULL in access.actions
            and await self._limits.reaches(access, digest)
            and await self._meta.blobs.linked_size(access.repository.value, str(digest))
            is not None
        )

    async def delete(self, access: RepositoryAccess, digest: Digest) -> None:
        """Unlink the blob from the repository; its bytes go at GC if unused."""
        repo = access.require(DELETE)
        await self._limits.require_deletable(access, digest)
        if not await self._meta.blobs.unlink(repo.value, str(digest)):
            raise BlobUnknown(str(digest))
