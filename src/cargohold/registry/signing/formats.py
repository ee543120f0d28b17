"""How one signature format signs a manifest and checks what is there.

The ``sign`` job hands every registered format the manifest to sign; a format writes
its signature where its clients read it (a cosign ``.sig`` tag and bundle referrer
through ``registry/attach.py``; the signature API extension's store). ``verify``
reports every signature of that format on a manifest with its result, for
``cargohold verify`` and the metadata API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cargohold.registry.signing.keys import KeyStore


@dataclass(frozen=True, slots=True)
class SigningTarget:
    repository: str
    digest: str  # the manifest's
    media_type: str
    # The image's identity in the signature: public host + repository
    # (``registry.example.com/acme/app``), from ``server.public_url``.
    docker_reference: str


@dataclass(frozen=True, slots=True)
class SignatureReport:
    format: str  # "cosign" | "sigstore-bundle" | "simple-signing"
    key_id: str | None  # the key that made it, when known
    signer: str  # "registry" or the subject of who stored it
    verified: bool
    detail: str  # why not, or what was checked


class SignatureFormat(Protocol):
    name: str

    async def sign(self, target: SigningTarget, keys: KeyStore) -> None:
        """Make and store this format's signature of ``target`` with the active key;
        doing it twice with the same key stores nothing new."""
        ...

    async def verify(
        self, target: SigningTarget, keys: KeyStore
    ) -> list[SignatureReport]:
        """Every signature of this format on ``target``, each checked against the
        registry's public keys (active and retired) and ``target``'s identity."""
        ...
