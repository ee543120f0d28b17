"""An in-memory ``KeyStore`` for tests: ECDSA P-256 keys made on the spot, rotation.

No OpenPGP key (the simple-signing format has its own tests): asking for one raises
``LookupError``, as the protocol says a store without one does.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cargohold.registry.signing.keys import ECDSA_P256, EcdsaKey, PublicKey
from cargohold.registry.signing.public_keys import ecdsa_key_id

OPENSSL = "/usr/bin/openssl"


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )


class MemoryKeyStore:
    def __init__(self) -> None:
        self._keys: list[tuple[ec.EllipticCurvePrivateKey, float]] = []
        self.rotate()

    def rotate(self) -> None:
        """A new active key; the previous ones stay, retired."""
        self._keys.append((ec.generate_private_key(ec.SECP256R1()), time.time()))

    @property
    def active(self) -> ec.EllipticCurvePrivateKey:
        return self._keys[-1][0]

    def public_keys(self) -> list[PublicKey]:
        last = len(self._keys) - 1
        return [
            PublicKey(
                ecdsa_key_id(key.public_key()),
                ECDSA_P256,
                "active" if n == last else "retired",
                created,
                public_pem(key),
            )
            for n, (key, created) in enumerate(self._keys)
        ]

    def ecdsa(self) -> EcdsaKey:
        return EcdsaKey(ecdsa_key_id(self.active.public_key()), self.active)

    def openpgp_fingerprint(self) -> str:
        msg = "no OpenPGP key in this store"
        raise LookupError(msg)

    def openpgp_sign(self, data: bytes) -> bytes:
        msg = f"no OpenPGP key in this store to sign {len(data)} bytes"
        raise LookupError(msg)


def openssl_verifies(public_pem_path: Path, data: Path, signature: Path) -> bool:
    """Whether ``openssl dgst -sha256 -verify`` accepts ``signature`` over ``data``."""
    done = subprocess.run(
        [
            OPENSSL,
            "dgst",
            "-sha256",
            "-verify",
            str(public_pem_path),
            "-signature",
            str(signature),
            str(data),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.returncode == 0 and "Verified OK" in done.stdout
