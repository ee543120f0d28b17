"""Checking every signature and attestation of one manifest (``cargohold verify``).

Each registered ``SignatureFormat`` reports its signatures, and every attestation's
DSSE envelope is checked; all against the registry's public keys (active and retired)
and the image's identity (``SigningTarget.docker_reference``, the subject digest).

The verdict: at least one registry signature verifies, and nothing the registry made
(or that claims a registry key made it) fails. A client's signature or attestation made
with a key the registry does not hold is listed, unverified, and does not count against
the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cargohold.oci.errors import ManifestUnknown
from cargohold.registry.attach import AttachmentReader
from cargohold.registry.attestations import (
    AttachedSbom,
    AttestationReport,
    AttestationService,
)
from cargohold.registry.limits import RepositoryAccess
from cargohold.registry.signing.formats import (
    SignatureFormat,
    SignatureReport,
    SigningTarget,
)
from cargohold.registry.signing.keys import KeyStore


@dataclass(frozen=True, slots=True)
class Verification:
    repository: str
    digest: str
    docker_reference: str
    signatures: list[SignatureReport]
    attestations: list[AttestationReport]
    # Unsigned SBOMs clients attached: listed beside the attestations, not judged.
    sboms: list[AttachedSbom]

    @property
    def failures(self) -> list[str]:
        """What the registry made, or claims to have made, that does not verify."""
        failed = [
            f"{s.format}: {s.detail}"
            for s in self.signatures
            if s.signer == "registry" and not s.verified
        ]
        failed += [
            f"attestation {a.predicate_type or '?'} ({a.where}): {a.detail}"
            for a in self.attestations
            if a.signer == "registry" and not a.verified
        ]
        return failed

    @property
    def ok(self) -> bool:
        signed = any(s.verified and s.signer == "registry" for s in self.signatures)
        return signed and not self.failures


class VerifyService:
    def __init__(
        self,
        reader: AttachmentReader,
        formats: Sequence[SignatureFormat],
        attestations: AttestationService | None,
        keys: KeyStore,
        *,
        public_host: str,
    ) -> None:
        self._reader = reader
        self._formats = formats
        self._attestations = attestations
        self._keys = keys
        self._public_host = public_host

    async def verify(self, access: RepositoryAccess, reference: str) -> Verification:
        """Every signature and attestation of the manifest ``reference`` (a tag or a
        digest) names in ``access``'s repository, each with its result.

        Raises:
            ManifestUnknown: there is no such manifest.
            Denied, Unauthorized: the caller may not pull it; its signatures and
                attestations follow the image.
        """
        stored = await self._reader.manifest(access, reference)
        if stored is None:
            raise ManifestUnknown(reference)
        repository = access.repository.value
        target = SigningTarget(
            repository=repository,
            digest=str(stored.digest),
            media_type=stored.media_type,
            docker_reference=f"{self._public_host}/{repository}",
        )
        signatures: list[SignatureReport] = []
        for signature_format in self._formats:
            signatures += await signature_format.verify(target, self._keys)
        attestations: list[AttestationReport] = []
        sboms: list[AttachedSbom] = []
        if self._attestations is not None:
            attestations = await self._attestations.reports(repository, target.digest)
            sboms = await self._attestations.sboms(repository, target.digest)
        return Verification(
            repository,
            target.digest,
            target.docker_reference,
            signatures,
            attestations,
            sboms,
        )
