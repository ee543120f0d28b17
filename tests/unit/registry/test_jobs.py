"""Which work a push queues (``registry/jobs.py``)."""

from __future__ import annotations

from cargohold.metadata.outbox import ATTEST, DESCRIBE, SIGN
from cargohold.registry.jobs import PushedManifest, PushJobs, attached_to
from cargohold.settings import SbomSettings, SigningSettings

DIGEST = "sha256:" + "ab" * 32
IMAGE = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def pushed(
    *,
    repository: str = "acme/app",
    media_type: str = IMAGE,
    tag: str | None = "v1",
    subject: str | None = None,
) -> PushedManifest:
    return PushedManifest(
        repository=repository,
        digest=DIGEST,
        media_type=media_type,
        tag=tag,
        subject=subject,
        actor="user:alice",
        at=1000.0,
    )


def channels(jobs: PushJobs, manifest: PushedManifest) -> list[str]:
    return [m.channel for m in jobs.for_push(manifest)]


def test_defaults_describe_images_and_sign_nothing() -> None:
    assert channels(PushJobs(), pushed()) == [DESCRIBE]
    assert channels(PushJobs(), pushed(media_type=INDEX)) == []


def test_signing_queues_signature_and_provenance_for_matching_repositories() -> None:
    jobs = PushJobs(SigningSettings(enabled=True, repositories=("acme/*",)))
    messages = jobs.for_push(pushed())
    assert [m.channel for m in messages] == [SIGN, ATTEST, DESCRIBE]
    assert messages[0].key == f"sign:acme/app@{DIGEST}"
    assert messages[1].payload["kind"] == "provenance"
    assert messages[1].payload["actor"] == "user:alice"
    assert messages[2].key == f"describe:acme/app@{DIGEST}"
    assert channels(jobs, pushed(repository="other/app")) == [DESCRIBE]
    # An index is signed (each child is signed by its own push) but not described.
    assert channels(jobs, pushed(media_type=INDEX)) == [SIGN, ATTEST]


def test_attachments_queue_nothing() -> None:
    jobs = PushJobs(SigningSettings(enabled=True), SbomSettings())
    assert channels(jobs, pushed(subject=DIGEST)) == []
    assert channels(jobs, pushed(tag="sha256-" + "ab" * 32 + ".sig")) == []
    assert channels(jobs, pushed(tag="sha256-" + "ab" * 32 + ".att")) == []
    assert channels(PushJobs(sbom=SbomSettings(enabled=False)), pushed()) == []


def test_attached_to() -> None:
    assert attached_to("sha256-" + "ab" * 32 + ".sig") == DIGEST
    assert attached_to("sha256-" + "ab" * 32 + ".sbom") == DIGEST
    assert attached_to("sha256-" + "ab" * 31 + ".sig") is None
    assert attached_to("v1.sig") is None
