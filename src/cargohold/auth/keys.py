"""Token signing keys: generation, the active key, and the published key set (JWKS).

Keys live in the metadata store so that every replica signs and verifies with the same
set. Rotation adds a key and makes it the one that signs; older keys stay published (and
valid for verification) for the retention period, so tokens they signed keep working
until they expire.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str  # "ES256" | "EdDSA"
    private_key: PrivateKey
    created_at: float

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.public_key))
        jwk.update({"kid": self.kid, "alg": self.algorithm, "use": "sig"})
        return jwk


def generate(algorithm: str, now: float) -> SigningKey:
    private: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The kid is derived from the public key, so it is stable and collision-free.
    kid = hashlib.sha256(public).hexdigest()[:16]
    return SigningKey(kid, algorithm, private, now)


def load(kid: str, algorithm: str, private_pem: str, created_at: float) -> SigningKey:
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise TypeError(f"signing key {kid} is not an EC or Ed25519 key")
    return SigningKey(kid, algorithm, private, created_at)


@dataclass(frozen=True, slots=True)
class KeySet:
    """The active signing key and every key still accepted for verification."""

    active: SigningKey
    accepted: dict[str, SigningKey]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.accepted.values()]}
