"""A ``KeyStore`` of public keys only, read from PEM files: for checking, not signing.

``cargohold verify --key cosign.pub`` checks signatures against keys someone gave it
(the registry's published ``cosign.pub``, a retired key kept elsewhere) without the
private keys. Asking it to sign raises ``LookupError``, as an empty key store does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cargohold.registry.signing.keys import ECDSA_P256, EcdsaKey, PublicKey


def ecdsa_key_id(public: ec.EllipticCurvePublicKey) -> str:
    """The key id ``KeyStore`` uses: sha256 hex of the DER public key."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def public_key_of(pem: bytes, *, where: str) -> PublicKey:
    """An ECDSA P-256 public key from PEM; ``ValueError`` naming ``where`` if not."""
    try:
        loaded = serialization.load_pem_public_key(pem)
    except ValueError as error:
        msg = f"{where}: not a PEM public key ({error})"
        raise ValueError(msg) from error
    if not isinstance(loaded, ec.EllipticCurvePublicKey) or not isinstance(
        loaded.curve, ec.SECP256R1
    ):
        msg = f"{where}: not an ECDSA P-256 public key"
        raise ValueError(msg)  # noqa: TRY004 - bad key material, as PEM errors are
    text = loaded.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return PublicKey(ecdsa_key_id(loaded), ECDSA_P256, "active", 0.0, text)


class PublicKeyFiles:
    """The ECDSA public keys in some PEM files, each treated as a registry key."""

    def __init__(self, paths: list[Path]) -> None:
        self._keys = [public_key_of(p.read_bytes(), where=str(p)) for p in paths]

    def public_keys(self) -> list[PublicKey]:
        return list(self._keys)

    def ecdsa(self) -> EcdsaKey:
        msg = "public keys only: nothing to sign with"
        raise LookupError(msg)

    def openpgp_fingerprint(self) -> str:
        msg = "no OpenPGP key"
        raise LookupError(msg)

    def openpgp_sign(self, data: bytes) -> bytes:  # noqa: ARG002 - the protocol's
        msg = "public keys only: nothing to sign with"
        raise LookupError(msg)
