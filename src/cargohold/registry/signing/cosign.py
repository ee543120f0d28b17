"""cosign's key-based signatures: the ``.sig`` tag and a Sigstore bundle referrer.

Two places, because clients differ (cosign ``specs/SIGNATURE_SPEC.md`` and
``specs/BUNDLE_SPEC.md``):

* **The ``sha256-<hex>.sig`` tag** that cosign and containers/image (``sigstoreSigned``
  with ``use-sigstore-attachments``) read: an OCI image manifest whose config is an
  image config listing the layers, and one layer per signature: the simple-signing
  payload (media type ``application/vnd.dev.cosign.simplesigning.v1+json``) with the
  base64 DER ECDSA signature in the annotation ``dev.cosignproject.cosign/signature``.
  Signing appends a layer and keeps every other one (a client's signatures too).
* **An OCI 1.1 referrer** (artifactType
  ``application/vnd.dev.sigstore.bundle.v0.3+json``) holding a Sigstore bundle v0.3
  with a message signature over the image manifest's bytes (so ``messageDigest`` is
  the subject's digest), the key named by its hint (base64 SHA-256 of the DER public
  key), and no transparency log entry.

The registry's own ``.sig`` payloads say ``optional.creator`` = ``cargohold``: that is
how ``verify`` tells a registry signature that fails (a failure) from a client's
signature made with a key the registry does not hold (listed, not counted against it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cargohold.oci import mediatypes
from cargohold.oci.digest import Digest
from cargohold.oci.errors import RegistryError
from cargohold.oci.manifest import Descriptor
from cargohold.registry.attach import Attacher, AttachmentReader, system_access
from cargohold.registry.signing import ecdsa
from cargohold.registry.signing.formats import SignatureReport, SigningTarget
from cargohold.registry.signing.keys import KeyStore

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_TYPE = "cosign container image signature"
CREATOR = "cargohold"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_CONTENT = "dev.sigstore.bundle.content"
CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"
EMPTY_JSON = b"{}"


def sig_tag(digest: str) -> str:
    """cosign's tag for the signatures of ``digest``: ``sha256-<hex>.sig``."""
    return digest.replace(":", "-", 1) + ".sig"


def simple_signing_payload(target: SigningTarget, *, timestamp: int) -> bytes:
    """The payload cosign signs, naming the image's identity and digest."""
    document = {
        "critical": {
            "identity": {"docker-reference": target.docker_reference},
            "image": {"docker-manifest-digest": target.digest},
            "type": COSIGN_TYPE,
        },
        "optional": {"creator": CREATOR, "timestamp": timestamp},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signature_config(layers: list[dict[str, Any]]) -> bytes:
    """The image config of a ``.sig`` manifest, as cosign writes it: no platform, and
    the layers' digests as ``diff_ids`` (the payloads are not compressed)."""
    zero = "0001-01-01T00:00:00Z"
    document = {
        "architecture": "",
        "created": zero,
        "history": [{"created": zero} for _ in layers],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        "config": {},
    }
    return json.dumps(document, separators=(",", ":")).encode()


async def append_to_cosign_tag(  # noqa: PLR0917 - one layer's description
    attacher: Attacher,
    repository: str,
    tag: str,
    layers: list[dict[str, Any]],
    data: bytes,
    media_type: str,
    annotations: dict[str, str],
) -> None:
    """Store ``data`` as one more layer of the cosign ``tag`` (``.sig``, ``.att``)
    whose current layers are ``layers``: the layers kept, a new config listing
    them, the manifest moved onto the tag (read-modify-write, as cosign does)."""
    stored = await attacher.blob(repository, data, media_type)
    layers = [
        *layers,
        {
            "mediaType": media_type,
            "size": stored.size,
            "digest": stored.digest,
            "annotations": annotations,
        },
    ]
    config = await attacher.blob(repository, signature_config(layers), OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "size": config.size,
            "digest": config.digest,
        },
        "layers": layers,
    }
    await attacher.manifest(
        repository,
        json.dumps(manifest, separators=(",", ":")).encode(),
        mediatypes.OCI_MANIFEST,
        tag=tag,
    )


def _check_payload(payload: bytes, target: SigningTarget) -> tuple[str | None, bool]:
    """What is wrong with a ``.sig`` payload for ``target`` (None: nothing), and
    whether it claims to be the registry's."""
    try:
        document = json.loads(payload)
        critical = document["critical"]
        optional = document.get("optional") or {}
        claims = isinstance(optional, dict) and optional.get("creator") == CREATOR
        kind = critical["type"]
        digest = critical["image"]["docker-manifest-digest"]
        reference = critical["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return "the payload is not a simple-signing document", False
    if kind != COSIGN_TYPE:
        return f"critical.type is {kind!r}", claims
    if digest != target.digest:
        return f"it signs {digest}, not this manifest", claims
    if reference != target.docker_reference:
        return f"it names {reference!r}, not {target.docker_reference!r}", claims
    return None, claims


class CosignFormat:
    """The ``SignatureFormat`` ``cosign``: the ``.sig`` tag and the bundle referrer."""

    name = "cosign"

    def __init__(
        self,
        attacher: Attacher,
        reader: AttachmentReader,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._attacher = attacher
        self._reader = reader
        self._clock = clock

    async def sign(self, target: SigningTarget, keys: KeyStore) -> None:
        """Append the active key's signature to the ``.sig`` tag and attach a bundle,
        each unless one by that key for ``target`` is there already."""
        await self._sign_tag(target, keys)
        await self._sign_bundle(target, keys)

    async def verify(
        self, target: SigningTarget, keys: KeyStore
    ) -> list[SignatureReport]:
        candidates = ecdsa.verifying_keys(keys)
        return [
            *await self._verify_tag(target, candidates),
            *await self._verify_bundles(target, candidates),
        ]

    # The .sig tag

    async def _sig_layers(self, target: SigningTarget) -> list[dict[str, Any]]:
        access = system_access(target.repository)
        stored = await self._reader.manifest(access, sig_tag(target.digest))
        if stored is None:
            return []
        layers = json.loads(stored.content).get("layers")
        return [layer for layer in layers or [] if isinstance(layer, dict)]

    async def _sign_tag(self, target: SigningTarget, keys: KeyStore) -> None:
        active = keys.ecdsa()
        public = active.private.public_key()
        mine = [ecdsa.VerifyingKey(active.key_id, "active", public)]
        layers = await self._sig_layers(target)
        for report in await self._check_layers(target, layers, mine):
            if report.verified:
                return  # signed by this key already: nothing new
        payload = simple_signing_payload(target, timestamp=int(self._clock()))
        signature = base64.b64encode(ecdsa.sign(active, payload)).decode()
        await append_to_cosign_tag(
            self._attacher,
            target.repository,
            sig_tag(target.digest),
            layers,
            payload,
            SIMPLESIGNING,
            {SIGNATURE_ANNOTATION: signature},
        )

    async def _verify_tag(
        self, target: SigningTarget, candidates: list[ecdsa.VerifyingKey]
    ) -> list[SignatureReport]:
        return await self._check_layers(
            target, await self._sig_layers(target), candidates
        )

    async def _check_layers(
        self,
        target: SigningTarget,
        layers: list[dict[str, Any]],
        candidates: list[ecdsa.VerifyingKey],
    ) -> list[SignatureReport]:
        reports = []
        access = system_access(target.repository)
        for layer in layers:
            if layer.get("mediaType") != SIMPLESIGNING:
                continue
            annotations = layer.get("annotations") or {}
            try:
                digest = Digest.parse(str(layer.get("digest")))
                payload = await self._reader.blob(access, digest)
                signature = base64.b64decode(
                    str(annotations.get(SIGNATURE_ANNOTATION, "")), validate=True
                )
            except (RegistryError, binascii.Error) as error:
                reports.append(
                    _report("cosign", None, verified=False, detail=f"{error}")
                )
                continue
            wrong, claims = _check_payload(payload, target)
            key = ecdsa.which_key(candidates, payload, signature)
            if key is None:
                detail = "no registry key verifies the signature over the payload"
                reports.append(
                    _report(
                        "cosign", None, verified=False, detail=detail, claims=claims
                    )
                )
            elif wrong is not None:
                reports.append(
                    _report("cosign", key.key_id, verified=False, detail=wrong)
                )
            else:
                detail = f"ECDSA P-256 over the payload, {key.state} key; identity ok"
                reports.append(
                    _report("cosign", key.key_id, verified=True, detail=detail)
                )
        return reports

    # The Sigstore bundle referrer

    async def _bundles(
        self, target: SigningTarget
    ) -> list[tuple[Descriptor, dict[str, Any] | str]]:
        """Every bundle attached to ``target``: the parsed bundle, or what is wrong."""
        access = system_access(target.repository)
        subject = Digest.parse(target.digest)
        return [
            (descriptor, await self._bundle(target, descriptor))
            for descriptor in await self._reader.referrers(access, subject, BUNDLE)
        ]

    async def _bundle(
        self, target: SigningTarget, descriptor: Descriptor
    ) -> dict[str, Any] | str:
        access = system_access(target.repository)
        try:
            stored = await self._reader.manifest(access, str(descriptor.digest))
            if stored is None:
                return "the bundle's manifest is gone"
            layers = json.loads(stored.content).get("layers") or []
            layer = layers[0]
            data = await self._reader.blob(access, Digest.parse(str(layer["digest"])))
            bundle = json.loads(data)
        except (RegistryError, ValueError, KeyError, IndexError, TypeError) as error:
            return f"unreadable bundle: {error}"
        if not isinstance(bundle, dict) or bundle.get("mediaType") != BUNDLE:
            return "not a Sigstore bundle v0.3"
        return bundle

    async def _sign_bundle(self, target: SigningTarget, keys: KeyStore) -> None:
        active = keys.ecdsa()
        public = active.private.public_key()
        mine = [ecdsa.VerifyingKey(active.key_id, "active", public)]
        for _, bundle in await self._bundles(target):
            if isinstance(bundle, dict) and _check_bundle(bundle, target, mine)[0]:
                return  # signed by this key already
        access = system_access(target.repository)
        stored = await self._reader.manifest(access, target.digest)
        if stored is None:
            return  # the manifest was deleted since the push: nothing to sign
        signature = ecdsa.sign(active, stored.content)
        bundle = {
            "mediaType": BUNDLE,
            "verificationMaterial": {"publicKey": {"hint": ecdsa.key_hint(public)}},
            "messageSignature": {
                "messageDigest": {
                    "algorithm": "SHA2_256",
                    "digest": base64.b64encode(
                        hashlib.sha256(stored.content).digest()
                    ).decode(),
                },
                "signature": base64.b64encode(signature).decode(),
            },
        }
        data = json.dumps(bundle, separators=(",", ":")).encode()
        layer = await self._attacher.blob(target.repository, data, BUNDLE)
        empty = await self._attacher.blob(
            target.repository, EMPTY_JSON, mediatypes.OCI_EMPTY
        )
        created = datetime.fromtimestamp(self._clock(), UTC)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "artifactType": BUNDLE,
            "config": {
                "mediaType": mediatypes.OCI_EMPTY,
                "digest": empty.digest,
                "size": empty.size,
            },
            "layers": [
                {
                    "mediaType": BUNDLE,
                    "digest": layer.digest,
                    "size": layer.size,
                    "annotations": {
                        TITLE: layer.digest.replace(":", "-") + ".sigstore.json"
                    },
                }
            ],
            "subject": {
                "mediaType": target.media_type,
                "digest": target.digest,
                "size": len(stored.content),
            },
            "annotations": {
                BUNDLE_CONTENT: "message-signature",
                CREATED: created.isoformat(timespec="milliseconds").replace(
                    "+00:00", "Z"
                ),
            },
        }
        await self._attacher.manifest(
            target.repository,
            json.dumps(manifest, separators=(",", ":")).encode(),
            mediatypes.OCI_MANIFEST,
            tag=None,
        )

    async def _verify_bundles(
        self, target: SigningTarget, candidates: list[ecdsa.VerifyingKey]
    ) -> list[SignatureReport]:
        reports = []
        for descriptor, bundle in await self._bundles(target):
            if isinstance(bundle, str):
                reports.append(
                    _report("sigstore-bundle", None, verified=False, detail=bundle)
                )
                continue
            ok, key, detail = _check_bundle(bundle, target, candidates)
            detail = f"{descriptor.digest}: {detail}"
            claims = key is not None or _hint_of(bundle) in {c.hint for c in candidates}
            reports.append(
                _report(
                    "sigstore-bundle",
                    key.key_id if key else None,
                    verified=ok,
                    detail=detail,
                    claims=claims,
                )
            )
        return reports


def _hint_of(bundle: dict[str, Any]) -> str | None:
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        return None
    public = material.get("publicKey")
    return str(public.get("hint")) if isinstance(public, dict) else None


def _check_bundle(
    bundle: dict[str, Any],
    target: SigningTarget,
    candidates: list[ecdsa.VerifyingKey],
) -> tuple[bool, ecdsa.VerifyingKey | None, str]:
    """Whether a message-signature bundle signs ``target``'s manifest with one of
    ``candidates``; the key; what was checked or is wrong."""
    try:
        message = bundle["messageSignature"]
        algorithm = message["messageDigest"]["algorithm"]
        digest = base64.b64decode(message["messageDigest"]["digest"], validate=True)
        signature = base64.b64decode(message["signature"], validate=True)
    except (KeyError, TypeError, binascii.Error):
        return False, None, "not a message-signature bundle"
    if algorithm != "SHA2_256" or f"sha256:{digest.hex()}" != target.digest:
        return False, None, "its message digest is not this manifest's"
    hint = _hint_of(bundle)
    for candidate in candidates:
        if hint not in {None, candidate.hint}:
            continue
        if ecdsa.verifies_digest(candidate.public, digest, signature):
            detail = f"ECDSA P-256 over the manifest, {candidate.state} key"
            return True, candidate, detail
    return False, None, "no registry key verifies the signature over the manifest"


def _report(
    kind: str,
    key_id: str | None,
    *,
    verified: bool,
    detail: str,
    claims: bool = True,
) -> SignatureReport:
    """A report; ``signer`` is ``registry`` when a registry key made it or it claims
    one did, else ``client``."""
    signer = "registry" if key_id is not None or claims else "client"
    return SignatureReport(kind, key_id, signer, verified, detail)
