"""``SbomService``: the ``describe`` job, and reading an image's SBOM.

``describe`` (an outbox handler, once per manifest digest) reads the manifest's config
and layers from the blob store in a worker thread (at most ``sbom.concurrency`` per
process), finds its packages, and records the description and packages in one
transaction that also enqueues ``match`` and, where signing is on, ``attest`` kind
``sbom`` for every repository holding the digest. Running it again (a retry, a lease
that ran out after a kill -9) finds the description recorded and does nothing, or,
if the first run died before recording, records the same rows.

Reads follow the image: whoever may pull the manifest (tier visibility and tag
limits through ``ManifestService.get``) may read what was found in it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import IO, TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
import structlog

from cargohold.auth.policy import Principal
from cargohold.metadata.outbox import ATTEST, MATCH, OutboxMessage
from cargohold.metadata.packages import (
    DONE,
    FAILED,
    SKIPPED,
    Description,
    PackageRecord,
    PackageStore,
)
from cargohold.oci import mediatypes
from cargohold.oci.digest import Digest
from cargohold.oci.errors import (
    DigestInvalid,
    ManifestInvalid,
    NameInvalid,
    RegistryError,
)
from cargohold.oci.manifest import parse_manifest
from cargohold.oci.names import RepositoryName
from cargohold.registry.admin import Conflict, InvalidRequest, NotFound
from cargohold.registry.manifests import ManifestRef
from cargohold.registry.outbox import DeliveryFailed
from cargohold.registry.sbom import facts as image_facts
from cargohold.registry.sbom.layers import LayerUnreadable, read_image
from cargohold.storage.base import BlobNotFound

if TYPE_CHECKING:
    from cargohold.metadata.delivery import OutboxStore
    from cargohold.metadata.store import MetadataStore
    from cargohold.registry.access import AccessService
    from cargohold.registry.manifests import ManifestService
    from cargohold.registry.outbox import OutboxItem
    from cargohold.settings import SbomSettings, SigningSettings
    from cargohold.storage.base import BlobStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Described:
    """An image manifest's SBOM: what ``documents`` turns into SPDX or CycloneDX."""

    repository: str
    digest: str
    description: Description
    packages: list[PackageRecord]


class BridgedSource:
    """A blob's async stream read from a worker thread, forward only.

    Chunks are handed out by offset, not re-sliced: a tar reader asks for 10 KiB at
    a time from 1 MiB chunks.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._chunk = b""
        self._at = 0
        self._done = False

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1, /) -> bytes:
        parts: list[bytes] = []
        wanted = size
        while wanted != 0:
            if self._at >= len(self._chunk):
                chunk = None if self._done else anyio.from_thread.run(self._next)
                if chunk is None:
                    self._done = True
                    break
                self._chunk, self._at = chunk, 0
            end = len(self._chunk) if wanted < 0 else self._at + wanted
            part = self._chunk[self._at : end]
            self._at += len(part)
            parts.append(part)
            if wanted > 0:
                wanted -= len(part)
        return b"".join(parts)


class _Layers:
    """The layers' byte sources, opened one at a time in the worker thread."""

    def __init__(self, store: BlobStore, digests: list[Digest]) -> None:
        self._store = store
        self._digests = digests
        self._open: list[IO[bytes]] = []

    def __iter__(self) -> Any:
        for digest in self._digests:
            info = anyio.from_thread.run(self._store.stat, digest)
            if info.local is not None:
                handle = info.local.open()
                self._open.append(handle)
                yield handle
                handle.close()
            else:
                yield BridgedSource(self._store.open(digest))

    def close(self) -> None:
        for handle in self._open:
            handle.close()


class SbomService:
    def __init__(  # noqa: PLR0917 - the composition root passes each collaborator
        self,
        store: PackageStore,
        meta: MetadataStore,
        blobs: BlobStore,
        access: AccessService,
        manifests: ManifestService,
        settings: SbomSettings,
        signing: SigningSettings,
        *,
        outbox: OutboxStore,
        public_url: str = "http://localhost:5000",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._public_url = public_url
        self._outbox = outbox
        self._store = store
        self._meta = meta
        self._blobs = blobs
        self._access = access
        self._manifests = manifests
        self._settings = settings
        self._signing = signing
        self._clock = clock
        self._limiter = anyio.CapacityLimiter(max(1, settings.concurrency))

    # -- the describe job -----------------------------------------------------------

    async def describe(self, item: OutboxItem) -> None:
        """The ``describe`` outbox handler: payload ``{"repository", "digest"}``."""
        digest = str(item.payload.get("digest", ""))
        repository = str(item.payload.get("repository", ""))
        known = await self._store.description(digest)
        if known is not None:
            # Read before (another repository's push, or an earlier run of this
            # job): this repository still gets its SBOM attestation.
            if known.state == DONE:
                attest = self._attest_jobs([repository], digest)
                await self._outbox.enqueue(attest, now=self._clock())
            return
        holders = await self._store.repositories_with(digest)
        if not holders:
            return  # deleted before it was read: nothing to describe
        source = repository if repository in holders else holders[0]
        record = await self._meta.manifests.by_digest(source, digest)
        if record is None:
            return
        description, packages = await self._read(
            source, digest, record.content, record.media_type
        )
        jobs: list[OutboxMessage] = []
        if description.state == DONE:
            jobs.append(
                OutboxMessage(
                    f"match:{digest}:{description.described_at!r}",
                    MATCH,
                    {"digest": digest},
                )
            )
            jobs += self._attest_jobs(holders, digest)
        await self._store.record(description, packages, jobs=jobs)
        log.info(
            "image described",
            repository=source,
            digest=digest,
            state=description.state,
            packages=len(packages),
            error=description.error,
        )

    def _attest_jobs(self, repositories: list[str], digest: str) -> list[OutboxMessage]:
        """``attest`` sbom for those of ``repositories`` that ``[signing]`` covers."""
        if not self._signing.enabled:
            return []
        return [
            OutboxMessage(
                f"attest:sbom:{repository}@{digest}",
                ATTEST,
                {"repository": repository, "digest": digest, "kind": "sbom"},
            )
            for repository in repositories
            if any(fnmatchcase(repository, g) for g in self._signing.repositories)
        ]

    async def _read(
        self, repository: str, digest: str, content: bytes, media_type: str
    ) -> tuple[Description, list[PackageRecord]]:
        now = self._clock()

        def outcome(state: str, error: str | None = None, **facts: Any) -> Description:
            return Description(digest, repository, state, now, facts, error)

        try:
            manifest = parse_manifest(content, media_type)
        except RegistryError as exc:
            return outcome(FAILED, f"the manifest does not parse: {exc.detail}"), []
        if (
            manifest.media_type not in mediatypes.IMAGE_MANIFESTS
            or manifest.config is None
            or manifest.config.media_type not in image_facts.IMAGE_CONFIGS
        ):
            return outcome(SKIPPED, "not an image manifest"), []
        try:
            config = await self._config(manifest.config.digest, manifest.config.size)
            facts = image_facts.config_facts(manifest, config)
        except image_facts.ConfigInvalid as exc:
            return outcome(FAILED, str(exc)), []
        stored = [Digest.parse(str(d.digest)) for d in manifest.layers if not d.urls]
        if len(stored) < len(manifest.layers):
            facts["foreign_layers"] = len(manifest.layers) - len(stored)
        layers = _Layers(self._blobs, stored)
        limit = self._settings.max_image_bytes
        try:
            found = await anyio.to_thread.run_sync(
                lambda: read_image(layers, limit=limit), limiter=self._limiter
            )
        except LayerUnreadable as exc:
            return Description(digest, repository, FAILED, now, facts, str(exc)), []
        except BlobNotFound:
            raise DeliveryFailed(
                f"a layer of {digest} is not in the blob store"
            ) from None
        finally:
            layers.close()
        distro = image_facts.distribution(found)
        if distro is not None:
            facts["distribution"] = {"id": distro[0], "version_id": distro[1]}
        packages = image_facts.package_rows(found)
        return Description(digest, repository, DONE, now, facts), packages

    async def _config(self, digest: Digest, size: int) -> bytes:
        if size > image_facts.CONFIG_CAP:
            raise image_facts.ConfigInvalid(
                f"the config blob is larger than {image_facts.CONFIG_CAP} bytes"
            )
        try:
            parts = [chunk async for chunk in self._blobs.open(digest, end=size)]
        except BlobNotFound:
            raise DeliveryFailed(
                f"config blob {digest} is not in the blob store"
            ) from None
        return b"".join(parts)

    # -- reads ----------------------------------------------------------------------

    async def described(
        self, actor: Principal, repository: str, reference: str
    ) -> Described:
        """The SBOM of ``repository``'s manifest ``reference`` (a digest or a tag).

        Raises:
            InvalidRequest: a malformed name or reference.
            NotFound: the caller may not pull it (the same answer whether or not it
                exists), or it has not been described yet.
            Conflict: reading it failed, or it is not an image (an index, an artifact).
        """
        try:
            name = RepositoryName.parse(repository)
            ref = ManifestRef.parse(reference)
        except (NameInvalid, ManifestInvalid, DigestInvalid) as exc:
            raise InvalidRequest(str(exc.detail)) from None
        what = (
            f"{name.value}@{reference}" if ref.digest else f"{name.value}:{reference}"
        )
        access = await self._access.pull_access(actor, name)
        if access is None:
            raise NotFound(f"no manifest {what} you may pull")
        try:
            stored = await self._manifests.get(access, ref)
        except RegistryError:
            raise NotFound(f"no manifest {what} you may pull") from None
        digest = str(stored.digest)
        description = await self._store.description(digest)
        if description is None:
            raise NotFound(
                f"{name.value}@{digest} has not been described yet: its describe job "
                "is queued, or [sbom] is off for this repository"
            )
        if description.state == FAILED:
            raise Conflict(f"{digest} could not be read: {description.error}")
        if description.state == SKIPPED:
            raise Conflict(f"{digest} is not an image manifest (an index or artifact)")
        packages = await self._store.packages(digest)
        return Described(name.value, digest, description, packages)

    async def documents(
        self, repository: str, digest: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """The image's SBOMs as (predicate type, document) for the ``attest`` job
        (``registry/attestations.py`` ``SbomDocuments``); ``[]`` when it has not been
        described, could not be read, or is not an image."""
        # Imported here: documents.py and attestations.py import this module's names.
        from cargohold.registry.attach import SYSTEM  # noqa: PLC0415
        from cargohold.registry.attestations import CYCLONEDX, SPDX  # noqa: PLC0415
        from cargohold.registry.sbom.documents import (  # noqa: PLC0415
            cyclonedx_document,
            spdx_document,
        )

        try:
            described = await self.described(SYSTEM, repository, digest)
        except (NotFound, Conflict):
            return []
        return [
            (SPDX, spdx_document(described, registry=self._public_url)),
            (CYCLONEDX, cyclonedx_document(described, registry=self._public_url)),
        ]
