"""Registry bearer tokens: short-lived JWTs carrying the granted ``access``.

Issued by the token endpoint, verified on every ``/v2`` request. Verification checks
signature (only the configured asymmetric algorithms; never ``none``), ``kid``, issuer,
audience, expiry and not-before. Verified tokens are cached until they expire, so the
hot path pays a dictionary lookup, not an ECDSA verification, per request.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from cargohold.auth.keys import KeySet
from cargohold.auth.policy import Principal
from cargohold.auth.scopes import Access, merge_access

_ALGORITHMS = ["ES256", "EdDSA"]
_LEEWAY = 5  # seconds of clock skew tolerated between replicas


class InvalidToken(Exception):
    """The bearer token is malformed, forged, expired or not meant for this registry."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    principal: Principal
    access: tuple[Access, ...]
    expires_at: float

    def find(self, kind: str, name: str) -> Access | None:
        """Everything granted on a resource, merged over all its entries.

        Our tokens carry one entry per resource, but a token is read as data: a second
        entry for the same resource adds to the first, it never hides it.
        """
        return merge_access(e for e in self.access if e.type == kind and e.name == name)


class TokenIssuer:
    def __init__(
        self, keys: Callable[[], KeySet], *, issuer: str, service: str, ttl: int
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._service = service
        self.ttl = ttl

    def issue(
        self, principal: Principal, access: list[Access], *, now: float | None = None
    ) -> tuple[str, int]:
        """A signed token and its lifetime in seconds."""
        now = time.time() if now is None else now
        key = self._keys().active
        claims = {
            "iss": self._issuer,
            "sub": principal.subject,
            "aud": self._service,
            "iat": int(now),
            "nbf": int(now) - _LEEWAY,
            "exp": int(now) + self.ttl,
            "jti": uuid.uuid4().hex,
            "kind": principal.kind,
            "admin": principal.is_admin,
            "access": [entry.to_claim() for entry in access],
        }
        token = jwt.encode(
            claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid}
        )
        return token, self.ttl


class TokenVerifier:
    def __init__(
        self,
        keys: Callable[[], KeySet],
        *,
        issuer: str,
        service: str,
        cache_size: int = 10_000,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._service = service
        self._cache: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str, *, now: float | None = None) -> VerifiedToken:
        """Raises ``InvalidToken``."""
        now = time.time() if now is None else now
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + _LEEWAY > now:
                return cached
            del self._cache[token]
            raise InvalidToken("token expired")
        verified = self._verify(token, now)
        self._cache[token] = verified
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return verified

    def _verify(self, token: str, now: float) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        key = self._keys().accepted.get(str(header.get("kid")))
        if key is None:
            raise InvalidToken("token signed by an unknown key")
        if header.get("alg") != key.algorithm:
            raise InvalidToken("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[a for a in _ALGORITHMS if a == key.algorithm],
                audience=self._service,
                issuer=self._issuer,
                leeway=_LEEWAY,
                options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {exc}") from exc
        if claims["exp"] + _LEEWAY <= now:
            raise InvalidToken("token expired")
        # A claim of another shape (a number, a string) carries no access; it must
        # not break the request.
        entries = claims.get("access")
        access = tuple(
            entry
            for entry in map(
                Access.from_claim, entries if isinstance(entries, list) else []
            )
            if entry is not None
        )
        principal = Principal(
            kind=str(claims.get("kind", "anonymous")),
            subject=str(claims["sub"]),
            is_admin=claims.get("admin") is True,
        )
        return VerifiedToken(principal, access, float(claims["exp"]))
