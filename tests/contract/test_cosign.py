"""cosign signatures, Sigstore bundles, DSSE attestations and ``verify``, end to end
through the services on every database.

Checked with tools nobody here wrote: ``openssl dgst -sha256 -verify`` over the
``.sig`` payload and over the bundle's message (the manifest), securesystemslib's
``Envelope.verify`` for the attestations; the layouts against cosign's published
format (``specs/SIGNATURE_SPEC.md``, ``specs/BUNDLE_SPEC.md``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

from cargohold.api.app import open_services
from cargohold.auth.policy import Principal
from cargohold.metadata.accounts import OidcIdentityRecord
from cargohold.oci import mediatypes
from cargohold.oci.digest import Digest
from cargohold.oci.names import RepositoryName
from cargohold.registry.attach import system_access
from cargohold.registry.attestations import (
    ATT_ANNOTATION,
    CYCLONEDX,
    DSSE,
    IN_TOTO,
    PREDICATE_ANNOTATION,
    SLSA_PROVENANCE,
    SPDX,
    AttestationService,
    att_tag,
    sbom_tag,
    sign_envelope,
)
from cargohold.registry.limits import RepositoryAccess
from cargohold.registry.manifests import ManifestRef
from cargohold.registry.outbox import DeliveryFailed, OutboxItem
from cargohold.registry.signing.cosign import (
    BUNDLE,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING,
    CosignFormat,
    sig_tag,
    simple_signing_payload,
)
from cargohold.registry.signing.formats import SigningTarget
from cargohold.registry.verify import VerifyService
from cargohold.settings import (
    DatabaseSettings,
    ServerSettings,
    Settings,
    SigningSettings,
)
from tests.signing_keys import MemoryKeyStore, openssl_verifies, public_pem

from .conftest import _migrated

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from cargohold.registry.services import Services

HOST = "registry.example.com"
REPO = "acme/app"


@dataclass
class World:
    services: Services
    keys: MemoryKeyStore
    cosign: CosignFormat
    attestations: AttestationService
    verifier: VerifyService
    tmp: Path
    sboms: FakeSboms

    def target(self, digest: str, repository: str = REPO) -> SigningTarget:
        return SigningTarget(
            repository, digest, mediatypes.OCI_MANIFEST, f"{HOST}/{repository}"
        )

    async def manifest(self, reference: str, repository: str = REPO) -> dict[str, Any]:
        stored = await self.services.attachments.manifest(
            system_access(repository), reference
        )
        assert stored is not None, reference
        loaded: dict[str, Any] = json.loads(stored.content)
        return loaded

    async def blob(self, digest: str, repository: str = REPO) -> bytes:
        return await self.services.attachments.blob(
            system_access(repository), Digest.parse(digest)
        )

    async def push_image(
        self, seed: str, repository: str = REPO, tag: str = "v1"
    ) -> str:
        return await push_image(self.services, seed, repository, tag)

    async def put_manifest(
        self, repository: str, document: dict[str, Any], tag: str | None
    ) -> str:
        stored = await self.services.attacher.manifest(
            repository, json.dumps(document).encode(), mediatypes.OCI_MANIFEST, tag=tag
        )
        return stored.digest

    def write(self, name: str, data: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data)
        return path


async def image_manifest(services: Services, seed: str, repository: str) -> bytes:
    """Upload a small image's blobs to ``repository``; its manifest's bytes."""
    attacher = services.attacher
    config = await attacher.blob(
        repository, json.dumps({"seed": seed}).encode(), "config"
    )
    layer = await attacher.blob(repository, seed.encode() * 100, "layer")
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.digest,
            "size": config.size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer.digest,
                "size": layer.size,
            }
        ],
    }
    return json.dumps(manifest).encode()


async def push_image(
    services: Services, seed: str, repository: str = REPO, tag: str = "v1"
) -> str:
    content = await image_manifest(services, seed, repository)
    stored = await services.attacher.manifest(
        repository, content, mediatypes.OCI_MANIFEST, tag=tag
    )
    return stored.digest


class FakeSboms:
    """Stands in for the SBOM part's documents (its own tests validate them)."""

    def __init__(self) -> None:
        self.described: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    async def documents(
        self, repository: str, digest: str
    ) -> list[tuple[str, dict[str, Any]]]:
        return self.described.get(digest, [])


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    await _migrated(database_url).close()  # emptied (PostgreSQL) and migrated
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=database_url),
        server=ServerSettings(public_url=f"https://{HOST}"),
    )
    services = open_services(settings)
    keys = MemoryKeyStore()
    sboms = FakeSboms()
    reader = services.attachments
    cosign = CosignFormat(services.attacher, reader, clock=lambda: 1_700_000_000.0)
    attestations = AttestationService(
        services.attacher,
        reader,
        keys,
        services.auth.accounts.oidc,
        builder=f"https://{HOST}",
        public_host=HOST,
        sbom=sboms,
        clock=lambda: 1_700_000_100.0,
    )
    verifier = VerifyService(reader, [cosign], attestations, keys, public_host=HOST)
    try:
        yield World(services, keys, cosign, attestations, verifier, tmp_path, sboms)
    finally:
        await services.close()


# -- the .sig tag ---------------------------------------------------------------------


async def test_sig_tag_layout_and_openssl(world: World) -> None:
    digest = await world.push_image("a")
    await world.cosign.sign(world.target(digest), world.keys)

    sig = await world.manifest(sig_tag(digest))
    assert sig_tag(digest) == digest.replace("sha256:", "sha256-") + ".sig"
    assert sig["schemaVersion"] == 2
    assert sig["mediaType"] == mediatypes.OCI_MANIFEST
    assert sig["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = sig["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert set(layer["annotations"]) == {"dev.cosignproject.cosign/signature"}
    config = json.loads(await world.blob(sig["config"]["digest"]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"]]}

    payload = await world.blob(layer["digest"])
    document = json.loads(payload)
    assert document["critical"] == {
        "identity": {"docker-reference": f"{HOST}/{REPO}"},
        "image": {"docker-manifest-digest": digest},
        "type": "cosign container image signature",
    }
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    pub = world.write("cosign.pub", public_pem(world.keys.active).encode())
    sig_file = world.write("payload.sig", signature)
    assert openssl_verifies(pub, world.write("payload.json", payload), sig_file)
    tampered = payload.replace(b"acme/app", b"acme/evil")
    assert not openssl_verifies(pub, world.write("tampered.json", tampered), sig_file)

    [report, bundle_report] = await world.cosign.verify(
        world.target(digest), world.keys
    )
    assert (report.format, report.signer, report.verified) == (
        "cosign",
        "registry",
        True,
    )
    assert report.key_id == world.keys.ecdsa().key_id
    assert bundle_report.format == "sigstore-bundle"
    assert bundle_report.verified


async def test_signing_again_stores_nothing_new(world: World) -> None:
    digest = await world.push_image("a")
    target = world.target(digest)
    await world.cosign.sign(target, world.keys)
    first = await world.manifest(sig_tag(digest))
    await world.cosign.sign(target, world.keys)
    assert await world.manifest(sig_tag(digest)) == first
    referrers = await world.services.attachments.referrers(
        system_access(REPO), Digest.parse(digest), BUNDLE
    )
    assert len(referrers) == 1


async def test_rotation_appends_and_retired_keys_still_verify(world: World) -> None:
    digest = await world.push_image("a")
    target = world.target(digest)
    await world.cosign.sign(target, world.keys)
    world.keys.rotate()
    await world.cosign.sign(target, world.keys)
    assert len((await world.manifest(sig_tag(digest)))["layers"]) == 2
    reports = await world.cosign.verify(target, world.keys)
    assert [r.verified for r in reports] == [True, True, True, True]
    states = {r.detail.split(", ")[1].split(" ")[0] for r in reports}
    assert states == {"active", "retired"}


async def client_sig_layer(
    world: World, digest: str, *, creator: str
) -> dict[str, Any]:
    """A layer as a client's cosign makes it, with the client's own key."""

    payload = simple_signing_payload(world.target(digest), timestamp=1)
    if creator != "cargohold":
        payload = payload.replace(
            b'"creator":"cargohold"', f'"creator":"{creator}"'.encode()
        )
    key = ec.generate_private_key(ec.SECP256R1())
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    stored = await world.services.attacher.blob(REPO, payload, SIMPLESIGNING)
    return {
        "mediaType": SIMPLESIGNING,
        "digest": stored.digest,
        "size": stored.size,
        "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
    }


async def put_sig(
    world: World, digest: str, layers: list[dict[str, Any]], repository: str = REPO
) -> None:
    config = await world.services.attacher.blob(repository, b"{}", "config")
    await world.put_manifest(
        repository,
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.digest,
                "size": config.size,
            },
            "layers": layers,
        },
        sig_tag(digest),
    )


async def test_a_clients_signatures_stay_and_do_not_count(world: World) -> None:
    digest = await world.push_image("a")
    client = await client_sig_layer(world, digest, creator="someone")
    await put_sig(world, digest, [client])
    await world.cosign.sign(world.target(digest), world.keys)

    layers = (await world.manifest(sig_tag(digest)))["layers"]
    assert len(layers) == 2
    assert layers[0] == client
    result = await world.verifier.verify(system_access(REPO), digest)
    cosign = [s for s in result.signatures if s.format == "cosign"]
    assert [(s.signer, s.verified) for s in cosign] == [
        ("client", False),
        ("registry", True),
    ]
    assert result.ok, result.failures


async def test_a_tampered_payload_fails(world: World) -> None:
    digest = await world.push_image("a")
    other = await world.push_image("b", tag="v2")
    await world.cosign.sign(world.target(other), world.keys)
    # The registry's signature over image b's payload, moved to image a with the
    # payload edited to name a: the signature no longer matches.
    [layer] = (await world.manifest(sig_tag(other)))["layers"]
    payload = (await world.blob(layer["digest"])).replace(
        other.encode(), digest.encode()
    )
    stored = await world.services.attacher.blob(REPO, payload, SIMPLESIGNING)
    forged = {**layer, "digest": stored.digest, "size": stored.size}
    await put_sig(world, digest, [forged])

    result = await world.verifier.verify(system_access(REPO), digest)
    assert not result.ok
    [report] = result.signatures
    assert (report.signer, report.verified) == ("registry", False)
    assert "no registry key verifies" in report.detail


async def test_a_signature_copied_to_another_repository_fails(world: World) -> None:
    digest = await world.push_image("a")
    await world.cosign.sign(world.target(digest), world.keys)
    [layer] = (await world.manifest(sig_tag(digest)))["layers"]
    # The same image and the same signature layer in acme/other.
    await world.push_image("a", repository="acme/other")
    payload = await world.blob(layer["digest"])
    await world.services.attacher.blob("acme/other", payload, SIMPLESIGNING)
    await put_sig(world, digest, [layer], repository="acme/other")

    reports = await world.cosign.verify(world.target(digest, "acme/other"), world.keys)
    [copied] = [r for r in reports if r.format == "cosign"]
    assert not copied.verified
    assert copied.signer == "registry"
    assert f"names '{HOST}/{REPO}'" in copied.detail


# -- the Sigstore bundle --------------------------------------------------------------


async def test_bundle_referrer_layout_and_openssl(world: World) -> None:
    digest = await world.push_image("a")
    await world.cosign.sign(world.target(digest), world.keys)
    [descriptor] = await world.services.attachments.referrers(
        system_access(REPO), Digest.parse(digest), None
    )
    assert descriptor.artifact_type == BUNDLE
    assert descriptor.annotations is not None
    assert descriptor.annotations["dev.sigstore.bundle.content"] == "message-signature"
    manifest = await world.manifest(str(descriptor.digest))
    assert manifest["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert await world.blob(manifest["config"]["digest"]) == b"{}"
    assert manifest["subject"]["digest"] == digest
    [layer] = manifest["layers"]
    assert layer["mediaType"] == BUNDLE
    assert layer["annotations"]["org.opencontainers.image.title"] == (
        layer["digest"].replace(":", "-") + ".sigstore.json"
    )
    bundle = json.loads(await world.blob(layer["digest"]))
    assert bundle["mediaType"] == BUNDLE
    assert "tlogEntries" not in bundle["verificationMaterial"]
    message = bundle["messageSignature"]
    assert message["messageDigest"]["algorithm"] == "SHA2_256"
    image = await world.services.attachments.manifest(system_access(REPO), digest)
    assert image is not None
    assert (
        base64.b64decode(message["messageDigest"]["digest"])
        == hashlib.sha256(image.content).digest()
    )
    pub = world.write("cosign.pub", public_pem(world.keys.active).encode())
    assert openssl_verifies(
        pub,
        world.write("manifest.json", image.content),
        world.write("bundle.sig", base64.b64decode(message["signature"])),
    )


# -- attestations ---------------------------------------------------------------------


def item(payload: dict[str, Any], key: str = "attest:x") -> OutboxItem:
    return OutboxItem(id=1, key=key, channel="attest", payload=payload, attempts=0)


def verified_by_securesystemslib(
    envelope: dict[str, Any], keys: MemoryKeyStore
) -> dict[str, Any]:
    public = keys.active.public_key()
    key = SSlibKey.from_crypto(public, keyid=keys.ecdsa().key_id)
    parsed = Envelope.from_dict(envelope)
    assert set(parsed.verify([key], 1)) == {keys.ecdsa().key_id}
    assert parsed.payload_type == "application/vnd.in-toto+json"
    statement: dict[str, Any] = json.loads(parsed.payload)
    return statement


async def test_provenance_attestation(world: World) -> None:
    digest = await world.push_image("a")
    await world.services.auth.accounts.oidc.create(
        OidcIdentityRecord(
            name="ci",
            issuer="https://token.actions.example",
            audience="cargohold",
            subject="repo:acme/app:ref:refs/heads/main",
            claims={},
            created_at=1.0,
        )
    )
    job = {
        "repository": REPO,
        "digest": digest,
        "kind": "provenance",
        "actor": "oidc:ci",
        "at": 1_700_000_000.0,
        "tag": "v1",
    }
    await world.attestations.handle(item(job))
    await world.attestations.handle(item(job))  # again: nothing new

    [referrer] = await world.services.attachments.referrers(
        system_access(REPO), Digest.parse(digest), IN_TOTO
    )
    assert referrer.annotations is not None
    assert referrer.annotations[PREDICATE_ANNOTATION] == SLSA_PROVENANCE
    manifest = await world.manifest(str(referrer.digest))
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    envelope = json.loads(await world.blob(layer["digest"]))
    statement = verified_by_securesystemslib(envelope, world.keys)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [
        {"name": f"{HOST}/{REPO}", "digest": {"sha256": digest.removeprefix("sha256:")}}
    ]
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    predicate = statement["predicate"]
    assert predicate["runDetails"]["builder"]["id"] == f"https://{HOST}"
    assert predicate["runDetails"]["metadata"]["startedOn"] == "2023-11-14T22:13:20Z"
    assert predicate["buildDefinition"]["externalParameters"] == {
        "repository": REPO,
        "pusher": "oidc:ci",
        "tag": "v1",
        "oidc": {
            "issuer": "https://token.actions.example",
            "subject": "repo:acme/app:ref:refs/heads/main",
        },
    }
    att = await world.manifest(att_tag(digest))
    [att_layer] = att["layers"]
    assert att_layer["mediaType"] == DSSE
    assert att_layer["annotations"] == {ATT_ANNOTATION: SLSA_PROVENANCE}
    verified_by_securesystemslib(
        json.loads(await world.blob(att_layer["digest"])), world.keys
    )


async def test_sbom_attestations_and_their_source(world: World) -> None:
    digest = await world.push_image("a")
    job = {"repository": REPO, "digest": digest, "kind": "sbom"}
    with pytest.raises(DeliveryFailed) as not_yet:
        await world.attestations.handle(item(job))
    assert not not_yet.value.permanent
    world.sboms.described[digest] = [
        (SPDX, {"spdxVersion": "SPDX-2.3", "name": "a"}),
        (CYCLONEDX, {"bomFormat": "CycloneDX", "specVersion": "1.6"}),
    ]
    await world.attestations.handle(item(job))
    reports = await world.attestations.reports(REPO, digest)
    assert sorted(
        (r.predicate_type, r.where.split(" ")[0], r.verified) for r in reports
    ) == [
        (CYCLONEDX, "referrer", True),
        (CYCLONEDX, att_tag(digest), True),
        (SPDX, "referrer", True),
        (SPDX, att_tag(digest), True),
    ]
    spdx = next(r for r in reports if r.predicate_type == SPDX)
    assert spdx.statement is not None
    assert spdx.statement["predicate"] == {"spdxVersion": "SPDX-2.3", "name": "a"}


async def test_bad_attest_payloads_are_dead(world: World) -> None:
    for payload in (
        {"repository": REPO, "kind": "sbom"},
        {"repository": REPO, "digest": "sha256:nothex", "kind": "sbom"},
        {"repository": REPO, "digest": "sha256:" + "0" * 64, "kind": "poem"},
        {"repository": "Not/A/Name", "digest": "sha256:" + "0" * 64, "kind": "sbom"},
        {
            "repository": REPO,
            "digest": "sha256:" + "0" * 64,
            "kind": "provenance",
            "at": "noon",
        },
    ):
        with pytest.raises(DeliveryFailed) as failed:
            await world.attestations.handle(item(payload))
        assert failed.value.permanent


async def test_a_tampered_attestation_fails_verify(world: World) -> None:
    digest = await world.push_image("a")
    await world.cosign.sign(world.target(digest), world.keys)
    job = {
        "repository": REPO,
        "digest": digest,
        "kind": "provenance",
        "actor": "user:alice",
        "at": 1.0,
        "tag": "v1",
    }
    await world.attestations.handle(item(job))
    assert (await world.verifier.verify(system_access(REPO), "v1")).ok

    att = await world.manifest(att_tag(digest))
    [layer] = att["layers"]
    envelope = json.loads(await world.blob(layer["digest"]))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["pusher"] = (
        "user:mallory"
    )
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    stored = await world.services.attacher.blob(
        REPO, json.dumps(envelope).encode(), DSSE
    )
    config = await world.services.attacher.blob(REPO, b"{}", "config")
    att["layers"] = [{**layer, "digest": stored.digest, "size": stored.size}]
    att["config"] = {**att["config"], "digest": config.digest, "size": config.size}
    await world.put_manifest(REPO, att, att_tag(digest))

    result = await world.verifier.verify(system_access(REPO), "v1")
    assert not result.ok
    [failure] = result.failures
    assert "no registry key verifies the envelope" in failure


# -- wired: a push queues the attestation, the outbox makes it ------------------------


async def test_a_push_is_attested_through_the_outbox(
    database_url: str, tmp_path: Path
) -> None:
    await _migrated(database_url).close()
    settings = Settings(
        data_dir=tmp_path / "data",
        database=DatabaseSettings(url=database_url),
        server=ServerSettings(public_url=f"https://{HOST}"),
        signing=SigningSettings(enabled=True),
    )
    keys = MemoryKeyStore()
    services = open_services(settings, signing_keys=keys)
    try:
        assert services.verifier is not None
        assert "attest" in services.outbox.channels
        content = await image_manifest(services, "a", REPO)
        alice = RepositoryAccess(
            RepositoryName.parse(REPO),
            Principal("user", "user:alice"),
            {"pull": None, "push": None},
        )
        pushed = await services.manifests.put(
            alice, ManifestRef.parse("v1"), content, mediatypes.OCI_MANIFEST
        )
        # Queued by the PUT (the sign job too, run by the signing service).
        assert await services.outbox.drain(until=time.time() + 60) >= 1

        assert services.attestations is not None
        reports = await services.attestations.reports(REPO, str(pushed.digest))
        assert len(reports) == 2  # the referrer and the .att layer
        provenance = reports[0]
        assert all(r.verified and r.predicate_type == SLSA_PROVENANCE for r in reports)
        assert provenance.statement is not None
        external = provenance.statement["predicate"]["buildDefinition"][
            "externalParameters"
        ]
        assert external == {"repository": REPO, "pusher": "user:alice", "tag": "v1"}

        result = await services.verifier.verify(alice, "v1")
        assert not result.ok  # attested, but not signed yet
        await services.cosign.sign(
            SigningTarget(
                REPO, str(pushed.digest), mediatypes.OCI_MANIFEST, f"{HOST}/{REPO}"
            ),
            keys,
        )
        assert (await services.verifier.verify(alice, "v1")).ok
    finally:
        await services.close()


async def test_client_attachments_are_listed_beside_the_registrys(world: World) -> None:
    digest = await world.push_image("a")
    await world.cosign.sign(world.target(digest), world.keys)
    await world.attestations.handle(
        item({"repository": REPO, "digest": digest, "kind": "provenance", "at": 1.0})
    )
    attacher = world.services.attacher
    # A client's own attestation (its key), a .sbom tag and an SBOM referrer.
    theirs = MemoryKeyStore()
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "x", "digest": {"sha256": digest[7:]}}],
        "predicateType": "https://example.com/test-result/v1",
        "predicate": {"passed": True},
    }
    envelope = json.dumps(sign_envelope(doc, theirs)).encode()
    stored = await attacher.blob(REPO, envelope, DSSE)
    att = await world.manifest(att_tag(digest))
    att["layers"].append(
        {
            "mediaType": DSSE,
            "digest": stored.digest,
            "size": stored.size,
            "annotations": {ATT_ANNOTATION: "https://example.com/test-result/v1"},
        }
    )
    await world.put_manifest(REPO, att, att_tag(digest))
    spdx = await attacher.blob(REPO, b'{"spdxVersion":"SPDX-2.3"}', "text/spdx+json")
    empty = await attacher.blob(REPO, b"{}", mediatypes.OCI_EMPTY)
    layer = {"mediaType": "text/spdx+json", "digest": spdx.digest, "size": spdx.size}
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": empty.digest,
        "size": empty.size,
    }
    base = {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST}
    await world.put_manifest(
        REPO, {**base, "config": config, "layers": [layer]}, sbom_tag(digest)
    )
    image = await world.services.attachments.manifest(system_access(REPO), digest)
    assert image is not None
    referrer = {
        **base,
        "artifactType": "application/spdx+json",
        "config": {**config, "mediaType": mediatypes.OCI_EMPTY},
        "layers": [{**layer, "mediaType": "application/spdx+json"}],
        "subject": {
            "mediaType": mediatypes.OCI_MANIFEST,
            "digest": digest,
            "size": len(image.content),
        },
    }
    referrer_digest = await world.put_manifest(REPO, referrer, None)

    result = await world.verifier.verify(system_access(REPO), digest)
    assert result.ok, result.failures
    by_signer = sorted(
        (a.signer, a.predicate_type, a.verified) for a in result.attestations
    )
    assert by_signer == [
        ("client", "https://example.com/test-result/v1", False),
        ("registry", SLSA_PROVENANCE, True),
        ("registry", SLSA_PROVENANCE, True),
    ]
    assert sorted((s.media_type, s.where) for s in result.sboms) == [
        ("application/spdx+json", f"referrer {referrer_digest}"),
        ("text/spdx+json", f"{sbom_tag(digest)} layer 0"),
    ]
