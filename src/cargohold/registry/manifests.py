"""``ManifestService``: manifests, tags and referrers of a repository."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cargohold.auth.policy import DELETE, PULL, PUSH
from cargohold.metadata.store import (
    ManifestRecord,
    MetadataStore,
    Reference,
    SizeMismatch,
)
from cargohold.oci import mediatypes
from cargohold.oci.digest import Digest
from cargohold.oci.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
)
from cargohold.oci.manifest import Descriptor, parse_manifest
from cargohold.oci.names import Tag
from cargohold.registry import events as ev
from cargohold.registry.jobs import PushedManifest, PushJobs
from cargohold.registry.limits import RepositoryAccess, TagLimits
from cargohold.registry.paging import Page, visible_page


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """A manifest reference from a URL: exactly one of ``tag`` and ``digest``."""

    tag: Tag | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> ManifestRef:
        if ":" in text:
            return cls(digest=Digest.parse(text))
        return cls(tag=Tag.parse(text))


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: Digest
    media_type: str
    content: bytes
    subject: Digest | None = None


@dataclass(frozen=True, slots=True)
class Referrers:
    descriptors: list[Descriptor]
    filtered: bool


def _stored(record: ManifestRecord) -> StoredManifest:
    return StoredManifest(
        digest=Digest.parse(record.digest),
        media_type=record.media_type,
        content=record.content,
    )


def _raise_unmet(unmet: list[Reference | SizeMismatch]) -> None:
    """Turn what kept a manifest out of the store into its error."""
    mismatched = [u for u in unmet if isinstance(u, SizeMismatch)]
    if mismatched:
        raise ManifestInvalid(
            "descriptor size differs from the stored content: "
            + "; ".join(
                f"{m.reference.digest} declared {m.reference.size} bytes, "
                f"stored {m.stored}"
                for m in mismatched[:10]
            )
        )
    if unmet:
        raise ManifestBlobUnknown([u.digest for u in unmet if isinstance(u, Reference)])


class ManifestService:
    """Every method takes the caller's ``RepositoryAccess`` and checks it first."""

    def __init__(
        self,
        meta: MetadataStore,
        limits: TagLimits,
        *,
        events: ev.EventSink = ev.NULL_SINK,
        jobs: PushJobs | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._meta = meta
        self._limits = limits
        self._events = events
        self._jobs = jobs
        self._clock = clock

    def _event(
        self, kind: str, access: RepositoryAccess, **data: object
    ) -> ev.RegistryEvent:
        repository = access.repository.value
        return ev.RegistryEvent(
            id=f"{kind}:{uuid.uuid4().hex}",
            type=kind,
            at=self._clock(),
            actor=access.principal.subject,
            repository=repository,
            organization=ev.organization_of(repository),
            data={"repository": repository, "actor": access.principal.subject, **data},
        )

    async def get(self, access: RepositoryAccess, ref: ManifestRef) -> StoredManifest:
        """The manifest a tag points at, or the one with that digest."""
        repo = access.require(PULL)
        if ref.tag is not None:
            await self._limits.require_readable_tag(access, ref.tag.value)
            record = await self._meta.manifests.by_tag(repo.value, ref.tag.value)
        else:
            assert ref.digest is not None  # noqa: S101 - a tag or a digest
            await self._limits.require_manifest(access, ref.digest)
            record = await self._meta.manifests.by_digest(repo.value, str(ref.digest))
        if record is None:
            raise ManifestUnknown(str(ref.tag or ref.digest))
        return _stored(record)

    async def put(
        self,
        access: RepositoryAccess,
        ref: ManifestRef,
        content: bytes,
        content_type: str | None,
    ) -> StoredManifest:
        """Validate and store a manifest; move the tag if ``ref`` is one.

        Raises:
            ManifestInvalid, Unsupported: the bytes are not an acceptable manifest.
            DigestInvalid: pushed by digest, and the bytes hash to something else.
            ManifestInvalid: a descriptor's size differs from the stored blob's or
                child manifest's (reported first: no upload can fix it).
            ManifestBlobUnknown: a referenced blob or child manifest is not in ``repo``.
            Denied, Unauthorized: the tag, or what the manifest points at, is outside
                the caller's tag limits.
        """
        repo = access.require(PUSH)
        if ref.tag is not None:
            self._limits.require_tag(access, ref.tag.value, PUSH)
        manifest = parse_manifest(content, content_type)
        algorithm = ref.digest.algorithm if ref.digest else "sha256"
        digest = Digest.of(content, algorithm)
        if ref.digest is not None and digest != ref.digest:
            raise DigestInvalid(f"manifest hashes to {digest}, not {ref.digest}")
        references = [
            Reference(str(d.digest), "blob", d.size) for d in manifest.blob_references
        ]
        references += [
            Reference(str(d.digest), "manifest", d.size) for d in manifest.manifests
        ]
        if manifest.subject is not None:
            await self._limits.require_subject(access, manifest.subject.digest)
        record = ManifestRecord(
            repository=repo.value,
            digest=str(digest),
            media_type=manifest.media_type,
            content=content,
            artifact_type=manifest.referrer_artifact_type,
            subject=str(manifest.subject.digest) if manifest.subject else None,
            annotations=json.dumps(manifest.annotations)
            if manifest.annotations
            else None,
        )
        tag = ref.tag.value if ref.tag else None
        before = await self._meta.manifests.by_tag(repo.value, tag) if tag else None
        jobs = []
        if self._jobs is not None:
            pushed = PushedManifest(
                repository=repo.value,
                digest=str(digest),
                media_type=manifest.media_type,
                tag=tag,
                subject=record.subject,
                actor=access.principal.subject,
                at=self._clock(),
            )
            jobs = self._jobs.for_push(pushed)
        unmet = await self._meta.manifests.put(
            record,
            tag=tag,
            references=references,
            actor=access.principal.subject,
            jobs=jobs,
        )
        _raise_unmet(unmet)
        about = {
            "tag": tag,
            "digest": str(digest),
            "media_type": manifest.media_type,
            "size": len(content),
        }
        emitted = [self._event(ev.PUSH, access, **about)]
        if tag is not None and (before is None or before.digest != str(digest)):
            previous = before.digest if before is not None else None
            emitted.append(
                self._event(ev.TAG_MOVED, access, **about, previous=previous)
            )
        await self._events.emit(emitted)
        return StoredManifest(
            digest=digest,
            media_type=manifest.media_type,
            content=content,
            subject=manifest.subject.digest if manifest.subject else None,
        )

    async def delete(self, access: RepositoryAccess, ref: ManifestRef) -> None:
        """Delete a tag, or a manifest with every tag pointing at it."""
        repo = access.require(DELETE)
        if ref.tag is not None:
            self._limits.require_tag(access, ref.tag.value, DELETE)
            found = await self._meta.manifests.delete_tag(
                repo.value, ref.tag.value, actor=access.principal.subject
            )
        else:
            assert ref.digest is not None  # noqa: S101 - a tag or a digest
            await self._limits.require_deletable(access, ref.digest)
            found = await self._meta.manifests.delete(
                repo.value, str(ref.digest), actor=access.principal.subject
            )
        if not found:
            raise ManifestUnknown(str(ref.tag or ref.digest))
        tag = ref.tag.value if ref.tag else None
        digest = str(ref.digest) if ref.digest else None
        await self._events.emit(
            [self._event(ev.DELETE, access, tag=tag, digest=digest)]
        )

    async def tags(
        self, access: RepositoryAccess, *, last: str | None, limit: int | None
    ) -> Page:
        """Tags after ``last``, sorted: those the caller's tag limits cover."""
        repo = access.require(PULL)

        async def keep(tags: list[str]) -> list[str]:
            return await self._limits.visible_tags(access, tags)

        async def fetch(after: str | None, count: int | None) -> list[str]:
            return await self._meta.manifests.tags(repo.value, last=after, limit=count)

        page = await visible_page(
            fetch, keep if access.tags is not None else None, last=last, limit=limit
        )
        if not page.items and not await self._meta.repositories.exists(repo.value):
            raise NameUnknown(repo.value)
        return page

    async def referrers(
        self, access: RepositoryAccess, subject: Digest, artifact_type: str | None
    ) -> Referrers:
        """Manifests whose subject is ``subject`` (reachable with it, if it is)."""
        repo = access.require(PULL)
        await self._limits.require_manifest(access, subject)
        records = await self._meta.manifests.referrers(repo.value, str(subject))
        descriptors = [
            Descriptor(
                media_type=r.media_type,
                digest=Digest.parse(r.digest),
                size=len(r.content),
                artifact_type=r.artifact_type,
                annotations=json.loads(r.annotations) if r.annotations else None,
            )
            for r in records
            if artifact_type is None or r.artifact_type == artifact_type
        ]
        return Referrers(descriptors, filtered=artifact_type is not None)


def referrers_index(referrers: Referrers) -> bytes:
    """The OCI image index a referrers request answers with."""
    document = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_INDEX,
        "manifests": [d.to_json() for d in referrers.descriptors],
    }
    return json.dumps(document, separators=(",", ":")).encode()
