"""Signing keys behind an interface: files now, a KMS or PKCS#11 token later.

Two kinds of key sign: an ECDSA P-256 key (cosign's signature and bundle formats, and
the DSSE envelopes of attestations) and an OpenPGP key (containers/image's simple
signing). Each has one *active* key that signs new work; rotating makes a new active
key and keeps the old one's public half, listed as *retired*, so signatures it made
still verify.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

ECDSA_P256: Literal["ecdsa-p256"] = "ecdsa-p256"
OPENPGP: Literal["openpgp"] = "openpgp"
KeyKind = Literal["ecdsa-p256", "openpgp"]
KeyState = Literal["active", "retired"]


@dataclass(frozen=True, slots=True)
class PublicKey:
    key_id: str  # ECDSA: sha256 hex of the DER public key; OpenPGP: the fingerprint
    kind: KeyKind
    state: KeyState
    created_at: float
    public: str  # ECDSA: PEM (SubjectPublicKeyInfo); OpenPGP: ASCII-armored key


@dataclass(frozen=True, slots=True)
class EcdsaKey:
    """The active ECDSA P-256 key: signs with ``private``; ``key_id`` names it."""

    key_id: str
    private: ec.EllipticCurvePrivateKey


class KeyStore(Protocol):
    def public_keys(self) -> list[PublicKey]:
        """Every key, active and retired, oldest first."""
        ...

    def ecdsa(self) -> EcdsaKey:
        """The active ECDSA P-256 key; raises ``LookupError`` if there is none."""
        ...

    def openpgp_fingerprint(self) -> str:
        """The active OpenPGP key's fingerprint; ``LookupError`` if there is none."""
        ...

    def openpgp_sign(self, data: bytes) -> bytes:
        """An OpenPGP signed message (binary, not detached) holding ``data``, made
        with the active OpenPGP key: what containers/image stores as a simple
        signature."""
        ...
