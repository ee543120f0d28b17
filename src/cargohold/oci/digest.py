"""Content digests (OCI image-spec descriptor.md, "Digests")."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from cargohold.oci.errors import DigestInvalid

if TYPE_CHECKING:
    from hashlib import _Hash

# algorithm -> its encoding: lowercase hex of the exact length
_ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"[0-9a-f]{64}"),
    "sha512": re.compile(r"[0-9a-f]{128}"),
}
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


@dataclass(frozen=True, slots=True)
class Digest:
    """A verified ``algorithm:hex`` digest of a registered algorithm."""

    algorithm: str
    hex: str

    SUPPORTED: ClassVar[tuple[str, ...]] = tuple(_ALGORITHMS)

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``text``; raise ``DigestInvalid`` unless it is sha256 or sha512 hex."""
        if not _GRAMMAR.fullmatch(text):
            raise DigestInvalid(f"malformed digest: {text[:200]!r}")
        algorithm, _, encoded = text.partition(":")
        encoding = _ALGORITHMS.get(algorithm)
        if encoding is None:
            raise DigestInvalid(f"unsupported digest algorithm: {algorithm[:50]!r}")
        if not encoding.fullmatch(encoded):
            raise DigestInvalid(f"malformed {algorithm} digest: {text[:200]!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> _Hash:
        """A fresh hash object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"
