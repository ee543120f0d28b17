"""Simple signing with OpenPGP: containers/image's "atomic container signature".

The payload (containers/image ``docs/containers-signature.5.md``) is a JSON object::

    {"critical": {"identity": {"docker-reference": "<host>/<repository>"},
                  "image": {"docker-manifest-digest": "sha256:..."},
                  "type": "atomic container signature"},
     "optional": {"creator": "cargohold <version>", "timestamp": <unix seconds>}}

signed as an OpenPGP (non-detached, binary) message with the registry's OpenPGP key,
and served through the registry signature API extension (``api/v2/signatures.py``),
which skopeo, podman and CRI-O read with a ``signedBy`` policy.

Blocking work (``gpg``) runs in a thread, at most ``limiter`` at a time per process.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import gnupg

from cargohold import __version__
from cargohold.metadata.signatures import SignatureStore, StoredSignature
from cargohold.registry.signing.formats import SignatureReport, SigningTarget
from cargohold.registry.signing.keys import OPENPGP, KeyStore

NAME: Literal["simple-signing"] = "simple-signing"
SIGNATURE_TYPE = "atomic container signature"
REGISTRY = "registry"


def payload(target: SigningTarget, *, timestamp: int) -> bytes:
    """The atomic container signature payload claiming ``target``."""
    document = {
        "critical": {
            "identity": {"docker-reference": target.docker_reference},
            "image": {"docker-manifest-digest": target.digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": {"creator": f"cargohold {__version__}", "timestamp": timestamp},
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def check_payload(data: bytes, target: SigningTarget) -> str | None:
    """Why ``data`` does not claim ``target`` (None: it does)."""
    try:
        document: Any = json.loads(data)
        critical = document["critical"]
        kind = critical["type"]
        digest = critical["image"]["docker-manifest-digest"]
        reference = critical["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return "the signed payload is not an atomic container signature"
    if kind != SIGNATURE_TYPE:
        return f"the payload's type is {str(kind)[:80]!r}"
    if digest != target.digest:
        return f"signs another manifest ({str(digest)[:80]})"
    if reference != target.docker_reference:
        return (
            f"names {str(reference)[:200]!r}, not {target.docker_reference!r} "
            "(copied from another repository?)"
        )
    return None


@dataclass(frozen=True, slots=True)
class Opened:
    """What an OpenPGP signed message holds, checked against the given keys."""

    data: bytes
    fingerprint: str | None  # the primary key that made a valid signature


def open_signed(signed: bytes, armored_keys: Sequence[str]) -> Opened:
    """Check the OpenPGP signed message ``signed`` against ``armored_keys`` only
    (a throwaway keyring); blocking (runs ``gpg``)."""
    with tempfile.TemporaryDirectory(prefix="cargohold-verify-") as home:
        gpg = gnupg.GPG(gnupghome=home)
        try:
            for armored in armored_keys:
                gpg.import_keys(armored)
            opened = gpg.decrypt(signed)
        finally:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(  # noqa: S603 - fixed arguments, no shell
                    ["gpgconf", "--homedir", home, "--kill", "all"],  # noqa: S607
                    check=False,
                    capture_output=True,
                    timeout=30,
                )
    valid = bool(opened.valid)
    fingerprint = opened.pubkey_fingerprint or opened.fingerprint
    return Opened(bytes(opened.data or b""), str(fingerprint) if valid else None)


class SimpleSigningFormat:
    """``SignatureFormat`` "simple-signing": OpenPGP signatures in ``store``."""

    name: str = NAME

    def __init__(
        self,
        store: SignatureStore,
        *,
        limiter: anyio.CapacityLimiter,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._limiter = limiter
        self._clock = clock

    async def sign(self, target: SigningTarget, keys: KeyStore) -> None:
        fingerprint = keys.openpgp_fingerprint()
        if await self._store.signed_by(target.repository, target.digest, fingerprint):
            return
        now = float(self._clock())
        data = payload(target, timestamp=int(now))
        signed = await anyio.to_thread.run_sync(
            keys.openpgp_sign, data, limiter=self._limiter
        )
        await self._store.add(
            target.repository,
            target.digest,
            signed,
            key_id=fingerprint,
            created_by=REGISTRY,
            now=now,
        )

    async def verify(
        self, target: SigningTarget, keys: KeyStore
    ) -> list[SignatureReport]:
        stored = await self._store.for_manifest(target.repository, target.digest)
        armored = [k.public for k in keys.public_keys() if k.kind == OPENPGP]
        return [await self._report(sig, target, armored) for sig in stored]

    async def _report(
        self, signature: StoredSignature, target: SigningTarget, armored: list[str]
    ) -> SignatureReport:
        opened = await anyio.to_thread.run_sync(
            open_signed, signature.content, armored, limiter=self._limiter
        )
        signer = signature.created_by
        if opened.fingerprint is None:
            return SignatureReport(
                NAME,
                signature.key_id,
                signer,
                verified=False,
                detail="not signed by a registry key (active or retired)",
            )
        problem = check_payload(opened.data, target)
        if problem is not None:
            return SignatureReport(
                NAME, opened.fingerprint, signer, verified=False, detail=problem
            )
        return SignatureReport(
            NAME,
            opened.fingerprint,
            signer,
            verified=True,
            detail=f"OpenPGP key {opened.fingerprint}, identity "
            f"{target.docker_reference}",
        )
