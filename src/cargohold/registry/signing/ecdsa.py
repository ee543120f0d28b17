"""ECDSA P-256 signing and checking, shared by the cosign formats and DSSE.

Signatures are ASN.1 DER over SHA-256, as cosign, Sigstore and ``openssl dgst -sha256``
make and check them. One signature costs tens of microseconds, less than a hop to a
worker thread, so callers sign and verify on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from cargohold.registry.signing.keys import ECDSA_P256, EcdsaKey, KeyStore, PublicKey


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    """One of the registry's ECDSA public keys, active or retired."""

    key_id: str
    state: str
    public: ec.EllipticCurvePublicKey

    @property
    def hint(self) -> str:
        """How a Sigstore bundle names it: base64 of the SHA-256 of the DER key."""
        return key_hint(self.public)


def key_hint(public: ec.EllipticCurvePublicKey) -> str:
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def verifying_keys(keys: KeyStore) -> list[VerifyingKey]:
    """The registry's ECDSA public keys (active and retired), newest first."""
    found = reversed(keys.public_keys())
    return [parse_public(k) for k in found if k.kind == ECDSA_P256]


def parse_public(key: PublicKey) -> VerifyingKey:
    loaded = serialization.load_pem_public_key(key.public.encode())
    if not isinstance(loaded, ec.EllipticCurvePublicKey) or not isinstance(
        loaded.curve, ec.SECP256R1
    ):
        msg = f"key {key.key_id} is not an ECDSA P-256 public key"
        raise ValueError(msg)  # noqa: TRY004 - bad key material, as PEM errors are
    return VerifyingKey(key.key_id, key.state, loaded)


def sign(key: EcdsaKey, data: bytes) -> bytes:
    """A DER ECDSA signature of SHA-256(``data``)."""
    return key.private.sign(data, ec.ECDSA(hashes.SHA256()))


def verifies(public: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    try:
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def verifies_digest(
    public: ec.EllipticCurvePublicKey, digest: bytes, signature: bytes
) -> bool:
    """Whether ``signature`` signs the SHA-256 digest ``digest`` (prehashed)."""
    try:
        public.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except (InvalidSignature, ValueError):
        return False
    return True


def which_key(
    candidates: list[VerifyingKey], data: bytes, signature: bytes
) -> VerifyingKey | None:
    """The registry key ``signature`` over ``data`` verifies with, if any."""
    for candidate in candidates:
        if verifies(candidate.public, data, signature):
            return candidate
    return None
