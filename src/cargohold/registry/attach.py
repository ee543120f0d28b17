"""The registry writing into its own repositories: signatures, attestations, SBOMs.

What the registry attaches to an image (a cosign ``.sig`` or ``.att`` manifest, an OCI
referrer) goes through the same upload and manifest services as a client's push, as
the principal ``system``: GC claims, tombstones, size checks and tag history all
apply, and nothing here bypasses them. ``registry/jobs.py`` queues no work for what
is attached (it has a ``subject`` or a cosign tag), so attaching never loops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from cargohold.auth.policy import ALL_ACTIONS, Principal
from cargohold.oci.digest import Digest
from cargohold.oci.errors import BlobUnknown, ManifestUnknown
from cargohold.oci.manifest import Descriptor
from cargohold.oci.names import RepositoryName
from cargohold.registry.blobs import BlobService
from cargohold.registry.limits import RepositoryAccess
from cargohold.registry.manifests import ManifestRef, ManifestService, StoredManifest
from cargohold.registry.uploads import UploadService

SYSTEM = Principal("system", "system", is_admin=True)


def system_access(repository: str) -> RepositoryAccess:
    """Every action on ``repository``, as the registry itself."""
    return RepositoryAccess(
        RepositoryName.parse(repository), SYSTEM, dict.fromkeys(sorted(ALL_ACTIONS))
    )


@dataclass(frozen=True, slots=True)
class Attached:
    digest: str
    size: int
    media_type: str


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Attacher:
    def __init__(self, uploads: UploadService, manifests: ManifestService) -> None:
        self._uploads = uploads
        self._manifests = manifests

    async def blob(self, repository: str, data: bytes, media_type: str) -> Attached:
        """Store ``data`` in ``repository`` (linked there); its descriptor."""
        digest = Digest.of(data)
        await self._uploads.upload(
            system_access(repository), digest, _once(data), content_length=len(data)
        )
        return Attached(str(digest), len(data), media_type)

    async def manifest(
        self, repository: str, content: bytes, media_type: str, *, tag: str | None
    ) -> Attached:
        """Store a manifest whose blobs are already in ``repository``; tag it if
        ``tag`` is given (a cosign ``sha256-<hex>.sig`` tag, say)."""
        ref = ManifestRef.parse(tag or str(Digest.of(content)))
        stored = await self._manifests.put(
            system_access(repository), ref, content, media_type
        )
        return Attached(str(stored.digest), len(content), media_type)


# What the registry reads back of an attachment (a signature payload, a bundle, a DSSE
# envelope) is small; anything larger is not one of them and is not read.
MAX_ATTACHMENT_BYTES = 32 * 1024 * 1024


class AttachmentReader:
    """Reads attachments (cosign tags, referrers, their blobs) as a given caller.

    Every read goes through the manifest and blob services with the caller's
    ``RepositoryAccess``, so what a caller sees of an image's signatures and
    attestations follows what it may pull.
    """

    def __init__(self, manifests: ManifestService, blobs: BlobService) -> None:
        self._manifests = manifests
        self._blobs = blobs

    async def manifest(
        self, access: RepositoryAccess, reference: str
    ) -> StoredManifest | None:
        """The manifest a tag or digest names, or None when there is none."""
        try:
            return await self._manifests.get(access, ManifestRef.parse(reference))
        except ManifestUnknown:
            return None

    async def referrers(
        self, access: RepositoryAccess, subject: Digest, artifact_type: str | None
    ) -> list[Descriptor]:
        found = await self._manifests.referrers(access, subject, artifact_type)
        return found.descriptors

    async def blob(self, access: RepositoryAccess, digest: Digest) -> bytes:
        """A small blob's bytes, checked against ``digest``.

        Raises:
            BlobUnknown: not in the repository, too large to be an attachment, or
                its bytes do not hash to ``digest``.
        """
        blob = await self._blobs.get(access, digest)
        if blob.size > MAX_ATTACHMENT_BYTES:
            raise BlobUnknown(f"{digest} is larger than an attachment may be")
        data = bytearray()
        async for chunk in self._blobs.stream(blob):
            data += chunk
            if len(data) > MAX_ATTACHMENT_BYTES:
                raise BlobUnknown(f"{digest} is larger than an attachment may be")
        if Digest.of(bytes(data), digest.algorithm) != digest:
            raise BlobUnknown(f"{digest}: stored bytes do not match the digest")
        return bytes(data)
