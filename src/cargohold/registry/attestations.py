"""Signed in-toto attestations of what the registry knows about an image.

The ``attest`` outbox job (payloads in ``metadata/outbox.py``) makes an in-toto
Statement v1 about one manifest, wraps it in a DSSE envelope signed with the registry's
ECDSA key (securesystemslib's ``Envelope`` and ``CryptoSigner``), and attaches it twice,
for the two ways clients look (no other module writes attestations):

* an OCI 1.1 referrer: artifactType ``application/vnd.in-toto+json``, one layer
  ``application/vnd.dsse.envelope.v1+json`` (the envelope), annotation
  ``in-toto.io/predicate-type`` on the manifest and the layer;
* a layer of cosign's ``sha256-<hex>.att`` tag (media type
  ``application/vnd.dsse.envelope.v1+json``, annotation ``predicateType``), appended
  to the layers already there (a client's attestations stay).

Kinds: ``provenance`` (SLSA Provenance v1 of the push: the registry as builder, who
pushed and when, the tag, a CI identity's issuer and subject) and ``sbom`` (SPDX 2.3
and CycloneDX 1.6 predicates, from an ``SbomDocuments`` source). Running a job again
attaches nothing new for a predicate type the active key already attested.

``list`` reads every attestation of a manifest, the registry's and clients', and checks
each envelope's signature against the registry's public keys (active and retired) and
its statement's subject against the manifest's digest.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import FormatError, UnverifiedSignatureError

# Public names of the package (its __init__ re-exports them without __all__).
from securesystemslib.signer import (  # type: ignore[attr-defined]
    CryptoSigner,
    SSlibKey,
)

from cargohold.metadata.accounts import OidcIdentityIndex
from cargohold.oci import mediatypes
from cargohold.oci.digest import Digest
from cargohold.oci.errors import RegistryError
from cargohold.oci.names import RepositoryName
from cargohold.registry.attach import Attacher, AttachmentReader, system_access
from cargohold.registry.outbox import DeliveryFailed, OutboxItem
from cargohold.registry.signing import ecdsa
from cargohold.registry.signing.cosign import (
    CREATED,
    EMPTY_JSON,
    append_to_cosign_tag,
)
from cargohold.registry.signing.keys import KeyStore

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
IN_TOTO = "application/vnd.in-toto+json"  # the DSSE payload type, the artifactType
DSSE = "application/vnd.dsse.envelope.v1+json"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"  # on referrers
ATT_ANNOTATION = "predicateType"  # on the .att tag's layers, as cosign writes it
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
SPDX = "https://spdx.dev/Document/v2.3"
CYCLONEDX = "https://cyclonedx.org/bom/v1.6"
BUILD_TYPE = "https://cargohold.dev/push/v1"
PROVENANCE, SBOM = "provenance", "sbom"
# Media types of SBOM documents clients attach unsigned (``cosign attach sbom``, a
# referrer pushed with oras): listed, not checked.
SBOM_MEDIA_TYPES = frozenset(
    {
        "application/spdx+json",
        "text/spdx+json",
        "text/spdx",
        "application/vnd.cyclonedx+json",
        "application/vnd.cyclonedx+xml",
        "application/vnd.cyclonedx",
        "application/vnd.syft+json",
    }
)


class SbomDocuments(Protocol):
    async def documents(
        self, repository: str, digest: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """The SBOMs of a described image manifest as (predicate type, document):
        SPDX 2.3 JSON (``SPDX``) and CycloneDX 1.6 JSON (``CYCLONEDX``); ``[]`` when
        the image has not been described."""
        ...


@dataclass(frozen=True, slots=True)
class AttestationReport:
    predicate_type: str
    where: str  # "referrer <digest>" or "<tag> layer <n>"
    key_id: str | None  # the registry key that verified it
    signer: str  # "registry" (made, or claims to be made, by a registry key) | "client"
    verified: bool
    detail: str
    statement: dict[str, Any] | None  # the verified (or, unverified, claimed) statement


@dataclass(frozen=True, slots=True)
class AttachedSbom:
    """An SBOM a client attached without a signature (nothing to verify)."""

    media_type: str
    where: str  # "referrer <digest>" or "<tag> layer <n>"
    digest: str  # the document's blob
    size: int


def _size(descriptor: dict[str, Any]) -> int:
    size = descriptor.get("size")
    return size if isinstance(size, int) else 0


def att_tag(digest: str) -> str:
    return digest.replace(":", "-", 1) + ".att"


def sbom_tag(digest: str) -> str:
    return digest.replace(":", "-", 1) + ".sbom"


def statement(
    subject_name: str, digest: str, predicate_type: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    algorithm, _, encoded = digest.partition(":")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {algorithm: encoded}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def provenance_predicate(
    *,
    builder: str,
    repository: str,
    tag: str | None,
    actor: str,
    at: float,
    finished: float,
    oidc: tuple[str, str] | None,
    invocation: str,
) -> dict[str, Any]:
    """SLSA Provenance v1 of a push: the registry "built" the image by accepting it."""
    external: dict[str, Any] = {"repository": repository, "pusher": actor}
    if tag is not None:
        external["tag"] = tag
    if oidc is not None:
        external["oidc"] = {"issuer": oidc[0], "subject": oidc[1]}
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {},
            "resolvedDependencies": [],
        },
        "runDetails": {
            "builder": {"id": builder},
            "metadata": {
                "invocationId": invocation,
                "startedOn": _rfc3339(at),
                "finishedOn": _rfc3339(finished),
            },
        },
    }


def sslib_key(key: ecdsa.VerifyingKey) -> SSlibKey:
    """A registry key as securesystemslib names it (keyid = our key id)."""
    return SSlibKey.from_crypto(key.public, keyid=key.key_id)


def sign_envelope(doc: dict[str, Any], keys: KeyStore) -> dict[str, Any]:
    """``doc`` (a statement) in a DSSE envelope signed with the active ECDSA key."""
    active = keys.ecdsa()
    public = ecdsa.VerifyingKey(active.key_id, "active", active.private.public_key())
    payload = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    envelope = Envelope(payload, IN_TOTO, {})
    envelope.sign(CryptoSigner(active.private, sslib_key(public)))
    result: dict[str, Any] = envelope.to_dict()
    return result


def check_envelope(
    document: object, digest: str, candidates: list[ecdsa.VerifyingKey]
) -> tuple[bool, ecdsa.VerifyingKey | None, str, dict[str, Any] | None, bool]:
    """Check a DSSE envelope: (verified, key, detail, statement, claims registry)."""
    try:
        envelope = Envelope.from_dict(copy.deepcopy(document))  # type: ignore[arg-type]
        doc = json.loads(envelope.payload)
    except (KeyError, TypeError, ValueError, FormatError, AttributeError) as error:
        return False, None, f"not a DSSE envelope: {error}", None, False
    mine = {c.key_id for c in candidates}
    claims = any(keyid in mine for keyid in envelope.signatures)
    found = None
    for candidate in candidates:
        try:
            envelope.verify([sslib_key(candidate)], 1)
        except UnverifiedSignatureError:
            continue
        found = candidate
        break
    if not isinstance(doc, dict):
        return False, found, "the payload is not an in-toto statement", None, claims
    if found is None:
        detail = "no registry key verifies the envelope"
        return False, None, detail, doc, claims
    if envelope.payload_type != IN_TOTO or doc.get("_type") != STATEMENT_TYPE:
        return False, found, "the payload is not an in-toto Statement v1", doc, True
    algorithm, _, encoded = digest.partition(":")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not any(
        isinstance(s, dict) and (s.get("digest") or {}).get(algorithm) == encoded
        for s in subjects
    ):
        return False, found, "its subject is not this manifest", doc, True
    return True, found, f"DSSE ECDSA P-256, {found.state} key; subject ok", doc, True


class AttestationService:
    def __init__(
        self,
        attacher: Attacher,
        reader: AttachmentReader,
        keys: KeyStore,
        identities: OidcIdentityIndex,
        *,
        builder: str,
        public_host: str,
        sbom: SbomDocuments | None = None,
        limiter: anyio.CapacityLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._attacher = attacher
        self._reader = reader
        self._keys = keys
        self._identities = identities
        self._builder = builder
        self._public_host = public_host
        self._sbom = sbom
        # Large SBOM envelopes are serialised and signed in worker threads, a few at
        # a time per process.
        self._limiter = limiter or anyio.CapacityLimiter(2)
        self._clock = clock

    async def handle(self, item: OutboxItem) -> None:
        """The ``attest`` outbox handler."""
        payload = item.payload
        try:
            repository = RepositoryName.parse(str(payload["repository"])).value
            digest = str(Digest.parse(str(payload["digest"])))
            kind = payload["kind"]
            at = float(payload.get("at", 0.0))
        except (KeyError, TypeError, ValueError, RegistryError) as error:
            msg = f"bad attest payload: {error}"
            raise DeliveryFailed(msg, permanent=True) from error
        if kind == PROVENANCE:
            predicates = [(SLSA_PROVENANCE, await self._provenance(item, at))]
        elif kind == SBOM:
            predicates = await self._sboms(repository, digest)
        else:
            msg = f"unknown attestation kind {kind!r}"
            raise DeliveryFailed(msg, permanent=True)
        target = await self._reader.manifest(system_access(repository), digest)
        if target is None:
            return  # deleted since it was pushed: nothing to attest
        for predicate_type, predicate in predicates:
            await self.attest(
                repository, digest, target.media_type, predicate_type, predicate
            )

    async def _provenance(self, item: OutboxItem, at: float) -> dict[str, Any]:
        payload = item.payload
        tag = payload.get("tag")
        actor = str(payload.get("actor", ""))
        oidc = None
        if actor.startswith("oidc:"):
            identity = await self._identities.get(actor.removeprefix("oidc:"))
            if identity is not None:
                oidc = (identity.issuer, identity.subject)
        return provenance_predicate(
            builder=self._builder,
            repository=str(payload["repository"]),
            tag=None if tag is None else str(tag),
            actor=actor,
            at=at,
            finished=self._clock(),
            oidc=oidc,
            invocation=item.key,
        )

    async def _sboms(
        self, repository: str, digest: str
    ) -> list[tuple[str, dict[str, Any]]]:
        if self._sbom is None:
            msg = "no SBOM source is configured"
            raise DeliveryFailed(msg, permanent=True)
        documents = await self._sbom.documents(repository, digest)
        if not documents:
            msg = f"{digest} has not been described yet"
            raise DeliveryFailed(msg)
        return documents

    async def attest(
        self,
        repository: str,
        digest: str,
        media_type: str,
        predicate_type: str,
        predicate: dict[str, Any],
    ) -> None:
        """Attach a signed statement of ``predicate`` about ``digest``, as a referrer
        and on the ``.att`` tag, each unless the active key attested that predicate
        type for it already."""
        active = self._keys.ecdsa()
        public = active.private.public_key()
        mine = [ecdsa.VerifyingKey(active.key_id, "active", public)]
        existing = await self._collect(repository, digest, mine)
        done = {
            (r.where.split(" ", 1)[0], r.predicate_type) for r in existing if r.verified
        }
        subject = statement(
            f"{self._public_host}/{repository}", digest, predicate_type, predicate
        )
        envelope = await anyio.to_thread.run_sync(
            self._envelope_bytes, subject, limiter=self._limiter
        )
        if ("referrer", predicate_type) not in done:
            await self._attach_referrer(
                repository, digest, media_type, predicate_type, envelope
            )
        if (att_tag(digest), predicate_type) not in done:
            await self._append_att(repository, digest, predicate_type, envelope)

    def _envelope_bytes(self, doc: dict[str, Any]) -> bytes:
        signed = sign_envelope(doc, self._keys)
        return json.dumps(signed, separators=(",", ":")).encode()

    async def _attach_referrer(
        self,
        repository: str,
        digest: str,
        media_type: str,
        predicate_type: str,
        envelope: bytes,
    ) -> None:
        target = await self._reader.manifest(system_access(repository), digest)
        if target is None:
            return
        layer = await self._attacher.blob(repository, envelope, DSSE)
        empty = await self._attacher.blob(repository, EMPTY_JSON, mediatypes.OCI_EMPTY)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "artifactType": IN_TOTO,
            "config": {
                "mediaType": mediatypes.OCI_EMPTY,
                "digest": empty.digest,
                "size": empty.size,
            },
            "layers": [
                {
                    "mediaType": DSSE,
                    "digest": layer.digest,
                    "size": layer.size,
                    "annotations": {PREDICATE_ANNOTATION: predicate_type},
                }
            ],
            "subject": {
                "mediaType": media_type,
                "digest": digest,
                "size": len(target.content),
            },
            "annotations": {
                PREDICATE_ANNOTATION: predicate_type,
                CREATED: _rfc3339(self._clock()),
            },
        }
        await self._attacher.manifest(
            repository,
            json.dumps(manifest, separators=(",", ":")).encode(),
            mediatypes.OCI_MANIFEST,
            tag=None,
        )

    async def sboms(self, repository: str, digest: str) -> list[AttachedSbom]:
        """Unsigned SBOMs attached to ``digest``: the layers of its ``.sbom`` tag and
        referrers whose artifactType is an SBOM media type."""
        tag = sbom_tag(digest)
        found = [
            AttachedSbom(
                str(layer.get("mediaType", "")),
                f"{tag} layer {n}",
                str(layer.get("digest", "")),
                _size(layer),
            )
            for n, layer in enumerate(await self._tag_layers(repository, tag))
        ]
        access = system_access(repository)
        for d in await self._reader.referrers(access, Digest.parse(digest), None):
            if d.artifact_type not in SBOM_MEDIA_TYPES:
                continue
            stored = await self._reader.manifest(access, str(d.digest))
            layers = json.loads(stored.content).get("layers") if stored else None
            found += [
                AttachedSbom(
                    str(layer.get("mediaType", d.artifact_type)),
                    f"referrer {d.digest}",
                    str(layer.get("digest", "")),
                    _size(layer),
                )
                for layer in layers or []
                if isinstance(layer, dict)
            ]
        return found

    async def _att_layers(self, repository: str, digest: str) -> list[dict[str, Any]]:
        return await self._tag_layers(repository, att_tag(digest))

    async def _tag_layers(self, repository: str, tag: str) -> list[dict[str, Any]]:
        stored = await self._reader.manifest(system_access(repository), tag)
        if stored is None:
            return []
        layers = json.loads(stored.content).get("layers")
        return [layer for layer in layers or [] if isinstance(layer, dict)]

    async def _append_att(
        self, repository: str, digest: str, predicate_type: str, envelope: bytes
    ) -> None:
        await append_to_cosign_tag(
            self._attacher,
            repository,
            att_tag(digest),
            await self._att_layers(repository, digest),
            envelope,
            DSSE,
            {ATT_ANNOTATION: predicate_type},
        )

    async def reports(self, repository: str, digest: str) -> list[AttestationReport]:
        """Every attestation of ``digest`` (referrers and ``.att`` layers, the
        registry's and clients'), each checked against the registry's keys."""
        return await self._collect(repository, digest, ecdsa.verifying_keys(self._keys))

    async def _collect(
        self, repository: str, digest: str, candidates: list[ecdsa.VerifyingKey]
    ) -> list[AttestationReport]:
        access = system_access(repository)
        found: list[tuple[str, str, Digest | None]] = []
        for d in await self._reader.referrers(access, Digest.parse(digest), IN_TOTO):
            envelope = await self._referrer_layer(repository, str(d.digest))
            claimed = (d.annotations or {}).get(PREDICATE_ANNOTATION, "")
            found.append((f"referrer {d.digest}", claimed, envelope))
        for n, layer in enumerate(await self._att_layers(repository, digest)):
            if layer.get("mediaType") != DSSE:
                continue
            claimed = str((layer.get("annotations") or {}).get(ATT_ANNOTATION, ""))
            try:
                blob: Digest | None = Digest.parse(str(layer.get("digest")))
            except RegistryError:
                blob = None
            found.append((f"{att_tag(digest)} layer {n}", claimed, blob))
        return [
            await self._check(repository, digest, (where, claimed), blob, candidates)
            for where, claimed, blob in found
        ]

    async def _referrer_layer(self, repository: str, manifest: str) -> Digest | None:
        stored = await self._reader.manifest(system_access(repository), manifest)
        if stored is None:
            return None
        try:
            layers = json.loads(stored.content).get("layers") or []
            dsse = [x for x in layers if x.get("mediaType") == DSSE]
            return Digest.parse(str(dsse[0]["digest"]))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None  # not an attestation referrer: listed as without envelope

    async def _check(
        self,
        repository: str,
        digest: str,
        place: tuple[str, str],  # where it is, the predicate type it is annotated with
        blob: Digest | None,
        candidates: list[ecdsa.VerifyingKey],
    ) -> AttestationReport:
        where, claimed = place
        unreadable = "no DSSE envelope"
        document = None
        if blob is not None:
            try:
                document = json.loads(
                    await self._reader.blob(system_access(repository), blob)
                )
            except (RegistryError, ValueError) as error:
                unreadable = f"unreadable: {error}"
        if document is None:
            return AttestationReport(
                claimed,
                where,
                None,
                "registry",
                verified=False,
                detail=unreadable,
                statement=None,
            )
        ok, key, detail, doc, claims = await anyio.to_thread.run_sync(
            check_envelope, document, digest, candidates, limiter=self._limiter
        )
        predicate_type = claimed
        if doc is not None and isinstance(doc.get("predicateType"), str):
            predicate_type = doc["predicateType"]
            if ok and claimed and claimed != predicate_type:
                ok, detail = False, f"annotated {claimed!r}, states {predicate_type!r}"
        return AttestationReport(
            predicate_type,
            where,
            key.key_id if key else None,
            "registry" if claims else "client",
            ok,
            detail,
            doc,
        )
