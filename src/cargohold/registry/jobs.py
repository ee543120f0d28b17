"""Work a manifest push queues: signing, describing (SBOM), provenance.

``PushJobs.for_push`` decides, from the settings and the manifest, which outbox
messages a push enqueues; the manifest PUT writes them in its own transaction (see
``metadata/outbox.py`` for channels and payloads), so the work exists exactly when the
manifest does, survives a kill -9, and runs once in whichever process leases it.

Not queued: what the registry or a client attaches to an image (signatures,
attestations, SBOMs: a manifest with a ``subject``, or a cosign tag
``sha256-<hex>.sig|.att|.sbom``), which would otherwise be signed and described in turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from cargohold.metadata.outbox import ATTEST, DESCRIBE, SIGN, OutboxMessage
from cargohold.settings import SbomSettings, SigningSettings

# The tags cosign (and containers/image with use-sigstore-attachments) attach to a
# manifest: ``sha256-<hex>`` + ``.sig`` (signatures), ``.att`` (attestations),
# ``.sbom`` (an SBOM).
COSIGN_TAG = re.compile(r"^(sha256)-([0-9a-f]{64})\.(sig|att|sbom)$")

_INDEXES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


def attached_to(tag: str) -> str | None:
    """The digest a cosign attachment tag belongs to, or None for any other tag."""
    found = COSIGN_TAG.match(tag)
    return f"{found[1]}:{found[2]}" if found else None


@dataclass(frozen=True, slots=True)
class PushedManifest:
    repository: str
    digest: str
    media_type: str
    tag: str | None
    subject: str | None  # the manifest it refers to (a referrer), if any
    actor: str  # the pusher's subject
    at: float


@dataclass(frozen=True, slots=True)
class PushJobs:
    signing: SigningSettings = field(default_factory=SigningSettings)
    sbom: SbomSettings = field(default_factory=SbomSettings)

    def for_push(self, pushed: PushedManifest) -> list[OutboxMessage]:
        if pushed.subject is not None or (
            pushed.tag is not None and attached_to(pushed.tag) is not None
        ):
            return []
        where = f"{pushed.repository}@{pushed.digest}"
        about = {"repository": pushed.repository, "digest": pushed.digest}
        jobs: list[OutboxMessage] = []
        if self.signing.enabled and _matches(pushed.repository, self.signing):
            jobs.append(OutboxMessage(f"sign:{where}", SIGN, about))
            jobs.append(
                OutboxMessage(
                    f"attest:provenance:{where}",
                    ATTEST,
                    {
                        **about,
                        "kind": "provenance",
                        "actor": pushed.actor,
                        "at": pushed.at,
                        "tag": pushed.tag,
                    },
                )
            )
        if (
            self.sbom.enabled
            and pushed.media_type not in _INDEXES
            and _matches(pushed.repository, self.sbom)
        ):
            jobs.append(OutboxMessage(f"describe:{where}", DESCRIBE, about))
        return jobs


def _matches(repository: str, settings: SigningSettings | SbomSettings) -> bool:
    return any(fnmatchcase(repository, glob) for glob in settings.repositories)
