"""``SigningService``: the ``sign`` job, resigning, the queue, stored signatures.

* ``sign`` (outbox channel ``sign``, ``metadata/outbox.py``): runs every registered
  ``SignatureFormat`` over one manifest (and each child of an index stored in the same
  repository). Formats skip what the active key already signed, so a job run again
  after a kill -9 or a lost lease stores nothing twice.
* ``resign(repository)``: queues ``sign`` for every manifest of a repository (not the
  attachments) under ``sign:<repository>@<digest>:<key id>``, so a key rotation
  signs each one once more, with the new key.
* the registry signature API extension's reads and writes (``api/v2/signatures.py``):
  whoever may pull a manifest reads its signatures; whoever may push stores one.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from cargohold.auth.policy import PUSH
from cargohold.metadata.outbox import SIGN, OutboxMessage
from cargohold.metadata.signatures import ManifestInfo, SignatureStore, StoredSignature
from cargohold.oci.digest import Digest
from cargohold.oci.errors import ManifestUnknown, RegistryError
from cargohold.registry.admin import NotFound
from cargohold.registry.jobs import attached_to
from cargohold.registry.limits import RepositoryAccess
from cargohold.registry.manifests import ManifestRef, ManifestService
from cargohold.registry.outbox import DeliveryFailed, OutboxItem
from cargohold.registry.signing.formats import (
    SignatureFormat,
    SignatureReport,
    SigningTarget,
)
from cargohold.registry.signing.keys import KeyStore, PublicKey

# The extension's schema and type (containers/image docker/docker_client.go).
EXTENSION_SCHEMA_VERSION = 2
EXTENSION_TYPE = "atomic"
# A simple signature is a few hundred bytes; refuse what cannot be one.
MAX_SIGNATURE_BYTES = 64 * 1024

_INDEXES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


class SignatureInvalid(RegistryError):
    code = "SIGNATURE_INVALID"
    message = "signature invalid"
    status = 400


@dataclass(frozen=True, slots=True)
class SigningStatus:
    keys: list[PublicKey]
    formats: list[str]
    queue: dict[str, int]  # outbox ``sign`` rows by state


class SigningService:
    def __init__(
        self,
        keys: KeyStore,
        store: SignatureStore,
        manifests: ManifestService,
        *,
        public_host: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self._store = store
        self._manifests = manifests
        self._host = public_host
        self._clock = clock
        self._formats: list[SignatureFormat] = []

    def register(self, signature_format: SignatureFormat) -> None:
        """Add a format the ``sign`` job runs and ``verify`` reads."""
        self._formats.append(signature_format)

    @property
    def formats(self) -> tuple[SignatureFormat, ...]:
        return tuple(self._formats)

    def target(self, repository: str, digest: str, media_type: str) -> SigningTarget:
        return SigningTarget(
            repository, digest, media_type, f"{self._host}/{repository}"
        )

    # -- the job -------------------------------------------------------------------

    async def sign_job(self, item: OutboxItem) -> None:
        """Outbox handler of channel ``sign``."""
        try:
            repository = str(item.payload["repository"])
            digest = str(item.payload["digest"])
        except KeyError as exc:
            msg = f"sign job without {exc}"
            raise DeliveryFailed(msg, permanent=True) from None
        try:
            await self.sign(repository, digest)
        except LookupError as exc:  # no key yet (keygen not run)
            raise DeliveryFailed(str(exc)) from None
        except OSError as exc:  # the key store failed (gpg, files): try again later
            msg = f"signing failed: {exc}"
            raise DeliveryFailed(msg) from None

    async def sign(self, repository: str, digest: str) -> int:
        """Sign ``digest`` in ``repository`` (and an index's children stored there)
        in every format; how many manifests it covered (0: the manifest is gone)."""
        manifest = await self._store.manifest(repository, digest)
        if manifest is None:
            return 0
        covered = [manifest]
        if manifest.media_type in _INDEXES:
            for child in _children(manifest.content):
                found = await self._store.manifest(repository, child)
                if found is not None:
                    covered.append(found)
        for each in covered:
            target = self.target(repository, each.digest, each.media_type)
            for signature_format in self._formats:
                await signature_format.sign(target, self.keys)
        return len(covered)

    async def resign(self, repository: str) -> int:
        """Queue ``sign`` with the active key for every manifest of ``repository``;
        how many were queued (0 when each is queued already)."""
        key_id = self.keys.ecdsa().key_id
        messages = [
            OutboxMessage(
                f"sign:{repository}@{m.digest}:{key_id}",
                SIGN,
                {"repository": repository, "digest": m.digest},
            )
            for m in await self._store.manifests(repository)
            if _signable(m)
        ]
        return await self._store.queue(messages, now=self._clock())

    async def public_keys(self) -> list[PublicKey]:
        """Every public key, active and retired, oldest first.

        Raises:
            NotFound: there are no signing keys (signing was never enabled).
        """
        keys = await anyio.to_thread.run_sync(self.keys.public_keys)
        if not keys:
            raise NotFound("this registry has no signing keys")
        return keys

    async def status(self) -> SigningStatus:
        return SigningStatus(
            self.keys.public_keys(),
            [f.name for f in self._formats],
            await self._store.queue_counts(SIGN),
        )

    async def verify(self, repository: str, digest: str) -> list[SignatureReport]:
        """Every format's signatures on the manifest, each with its result."""
        manifest = await self._store.manifest(repository, digest)
        if manifest is None:
            raise ManifestUnknown(digest)
        target = self.target(repository, digest, manifest.media_type)
        reports: list[SignatureReport] = []
        for signature_format in self._formats:
            reports += await signature_format.verify(target, self.keys)
        return reports

    # -- the registry signature API extension --------------------------------------

    async def signatures(
        self, access: RepositoryAccess, digest: Digest
    ) -> list[StoredSignature]:
        """The stored simple signatures of a manifest the caller may pull."""
        await self._manifests.get(access, ManifestRef.parse(str(digest)))
        return await self._store.for_manifest(access.repository.value, str(digest))

    async def put_signature(
        self, access: RepositoryAccess, digest: Digest, body: bytes
    ) -> bool:
        """Store a client's signature (the extension's PUT body); ``False`` when the
        same signature is stored already.

        Raises:
            SignatureInvalid: not one extension signature of the manifest.
            ManifestUnknown: no such manifest in the repository.
        """
        repository = access.require(PUSH).value
        content = parse_extension_signature(body, str(digest))
        if await self._store.manifest(repository, str(digest)) is None:
            raise ManifestUnknown(str(digest))
        return await self._store.add(
            repository,
            str(digest),
            content,
            key_id=None,
            created_by=access.principal.subject,
            now=self._clock(),
        )


def extension_entry(signature: StoredSignature) -> dict[str, Any]:
    """One signature as the extension lists it (``name`` = digest@index)."""
    return {
        "schemaVersion": EXTENSION_SCHEMA_VERSION,
        "name": f"{signature.digest}@{signature.content_digest[-32:]}",
        "type": EXTENSION_TYPE,
        "content": base64.b64encode(signature.content).decode("ascii"),
    }


def parse_extension_signature(body: bytes, digest: str) -> bytes:
    """The signature bytes of a PUT body ``{"schemaVersion": 2, "name":
    "<digest>@<suffix>", "type": "atomic", "content": base64}``."""
    if len(body) > MAX_SIGNATURE_BYTES * 2:
        msg = f"a signature body is at most {MAX_SIGNATURE_BYTES * 2} bytes"
        raise SignatureInvalid(msg)
    try:
        document = json.loads(body)
    except ValueError:
        raise SignatureInvalid("the body is not JSON") from None
    if not isinstance(document, dict):
        raise SignatureInvalid("the body must be a JSON object")
    if document.get("schemaVersion") != EXTENSION_SCHEMA_VERSION:
        msg = f"schemaVersion must be {EXTENSION_SCHEMA_VERSION}"
        raise SignatureInvalid(msg)
    if document.get("type") != EXTENSION_TYPE:
        msg = f'type must be "{EXTENSION_TYPE}"'
        raise SignatureInvalid(msg)
    name = document.get("name")
    if not isinstance(name, str) or not name.startswith(f"{digest}@"):
        msg = f'name must be "{digest}@<unique suffix>"'
        raise SignatureInvalid(msg)
    content = document.get("content")
    if not isinstance(content, str):
        raise SignatureInvalid("content must be a base64 string")
    try:
        decoded = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("content is not valid base64") from None
    if not decoded or len(decoded) > MAX_SIGNATURE_BYTES:
        msg = f"a signature is 1 to {MAX_SIGNATURE_BYTES} bytes"
        raise SignatureInvalid(msg)
    return decoded


def _signable(manifest: ManifestInfo) -> bool:
    return manifest.subject is None and not any(
        attached_to(tag) is not None for tag in manifest.tags
    )


def _children(content: bytes) -> Sequence[str]:
    try:
        document = json.loads(content)
        return [str(m["digest"]) for m in document.get("manifests", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
