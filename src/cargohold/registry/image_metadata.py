"""Everything the registry knows about one manifest, for whoever may pull it.

One read for the metadata API (``GET /api/v1/repositories/{name}/manifests/
{reference}/metadata``) and the web catalog: what the manifest is (an image, an index
and its platforms, an artifact), the facts read from its config (platform, created,
labels, sizes), its packages (the SBOM's rows), every signature and attestation with
its verification result, and its vulnerabilities. Each part comes from the service
that owns it; this one only checks access once and puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cargohold.oci.errors import (
    DigestInvalid,
    ManifestInvalid,
    NameInvalid,
    RegistryError,
)
from cargohold.oci.manifest import Manifest, parse_manifest
from cargohold.oci.names import RepositoryName
from cargohold.registry.admin import InvalidRequest, NotFound
from cargohold.registry.manifests import ManifestRef

if TYPE_CHECKING:
    from cargohold.auth.policy import Principal
    from cargohold.metadata.packages import Description, PackageRecord, PackageStore
    from cargohold.registry.access import AccessService
    from cargohold.registry.manifests import ManifestService
    from cargohold.registry.verify import Verification, VerifyService
    from cargohold.registry.vulns import ImageView, VulnerabilityService

# Packages listed inline; the whole list is the SBOM (``.../sbom``).
MAX_PACKAGES = 10_000
_IMAGE_CONFIGS = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)


def manifest_kind(manifest: Manifest) -> str:
    """``index``; ``image`` (a runnable image's config); else ``artifact`` (a
    signature, an SBOM, a Helm chart: a referrer or another config type)."""
    if manifest.is_index:
        return "index"
    config = manifest.config.media_type if manifest.config else None
    if (
        manifest.subject is None
        and not manifest.artifact_type
        and (config in _IMAGE_CONFIGS)
    ):
        return "image"
    return "artifact"


@dataclass(frozen=True, slots=True)
class ImageMetadata:
    repository: str
    digest: str
    media_type: str
    kind: str  # "image" | "index" | "artifact"
    size: int  # the manifest's bytes
    artifact_type: str | None
    # An index's children: {"digest", "media_type", "size", "platform"}.
    children: list[dict[str, Any]]
    # Read from the config by the describe job; None until it ran.
    description: Description | None
    packages: list[PackageRecord]
    verification: Verification
    vulnerabilities: ImageView


class ImageMetadataService:
    def __init__(
        self,
        access: AccessService,
        manifests: ManifestService,
        packages: PackageStore,
        verifier: VerifyService,
        vulns: VulnerabilityService,
    ) -> None:
        self._access = access
        self._manifests = manifests
        self._packages = packages
        self._verifier = verifier
        self._vulns = vulns

    async def metadata(
        self, actor: Principal, repository: str, reference: str
    ) -> ImageMetadata:
        """What is known about ``repository``'s manifest ``reference`` (tag or digest).

        Raises:
            InvalidRequest: a malformed name or reference.
            NotFound: no such manifest, or the caller may not pull it (the same answer
                either way: a private repository's names never leak).
        """
        try:
            name = RepositoryName.parse(repository)
            ref = ManifestRef.parse(reference)
        except (NameInvalid, ManifestInvalid, DigestInvalid) as exc:
            raise InvalidRequest(str(exc.detail)) from None
        refused = NotFound(f"no manifest {reference} in {repository} you may pull")
        access = await self._access.pull_access(actor, name)
        if access is None:
            raise refused
        try:
            stored = await self._manifests.get(access, ref)
        except RegistryError:  # ManifestUnknown, Denied: the same answer
            raise refused from None
        digest = str(stored.digest)
        manifest = parse_manifest(stored.content, stored.media_type)
        kind = manifest_kind(manifest)
        children = [
            {
                "digest": str(d.digest),
                "media_type": d.media_type,
                "size": d.size,
                "platform": d.platform or {},
            }
            for d in manifest.manifests
        ]
        description = await self._packages.description(digest)
        packages: list[PackageRecord] = []
        if description is not None and description.state == "done":
            packages = (await self._packages.packages(digest))[:MAX_PACKAGES]
        return ImageMetadata(
            repository=name.value,
            digest=digest,
            media_type=stored.media_type,
            kind=kind,
            size=len(stored.content),
            artifact_type=manifest.referrer_artifact_type,
            children=children,
            description=description,
            packages=packages,
            verification=await self._verifier.verify(access, digest),
            vulnerabilities=await self._vulns.view(actor, name, stored.digest),
        )
