"""OIDC ID tokens from CI providers, checked against configured trust.

A CI job (GitHub Actions, GitLab, ...) holds an ID token: a JWT signed by its provider.
It may trade that token for a registry token when the token matches a configured
:class:`OidcIdentity`. This module owns that check: :func:`matches` (pure),
:class:`JwksCache` (OpenID discovery and signing keys, cached per issuer) and
:func:`verify_id_token`. It must not mint registry tokens, read settings or touch the
database; the only I/O is fetching issuer documents through an injected
``httpx.AsyncClient``.

Transport rule: an issuer, and the ``jwks_uri`` it advertises, must be ``https://``.
Plain ``http://`` is accepted only for loopback hosts (``127.0.0.1``, ``localhost``,
``[::1]``) so that tests can run a real issuer on a local port.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import anyio
import httpx
import jwt

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

# Asymmetric algorithms only: never "none", never HS* (a public key is no secret).
ALLOWED_ALGORITHMS: Final = frozenset({"RS256", "ES256", "EdDSA"})
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_PUBLIC_KEY_TYPES: Final = ("RSA", "EC", "OKP")
_REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "exp", "iat")
_MAX_TOKEN_CHARS: Final = 16 * 1024
_MAX_DOCUMENT_BYTES: Final = 1024 * 1024


class OidcError(Exception):
    """An ID token or issuer was rejected; the message is safe to show the client."""


@dataclass(frozen=True, slots=True)
class OidcIdentity:
    """A trusted CI identity: ``issuer``'s tokens for ``audience`` with matching claims.

    ``subject`` and the values of ``claims`` are ``fnmatch`` globs matched against the
    whole claim, case-sensitively. ``*`` also matches ``/`` and ``:``, so pin every
    field of a structured subject (``repo:acme/app:ref:refs/heads/main``).
    """

    name: str
    issuer: str
    audience: str
    subject: str
    claims: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A read-only copy: later changes to the caller's dict cannot widen trust.
        object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))


def matches(identity: OidcIdentity, claims: Mapping[str, Any]) -> bool:
    """Whether already-verified ``claims`` satisfy every pattern of ``identity``.

    ``iss`` must equal the issuer; ``aud`` must be the audience or a list holding it;
    ``sub`` and each configured claim must be present and match their glob. A claim
    value is compared as a string: strings as they are, numbers and booleans in their
    JSON spelling (``true``, ``42``); objects, lists and ``null`` never match.
    """
    if claims.get("iss") != identity.issuer:
        return False
    if not _audience_contains(claims.get("aud"), identity.audience):
        return False
    for name, pattern in [("sub", identity.subject), *identity.claims.items()]:
        value = _claim_text(claims.get(name))
        if value is None or not fnmatchcase(value, pattern):
            return False
    return True


def _audience_contains(aud: object, audience: str) -> bool:
    if isinstance(aud, str):
        return aud == audience
    if isinstance(aud, list):
        return any(isinstance(item, str) and item == audience for item in aud)
    return False


def _claim_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


def _require_secure(url: str, what: str) -> None:
    """Raise unless ``url`` is https, or http to a loopback host (module docstring)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.username is not None or parts.password is not None:
        raise OidcError(f"{what} is not a valid URL")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return
    raise OidcError(f"{what} must use https (plain http only for loopback hosts)")


@dataclass(frozen=True, slots=True)
class _KeySet:
    keys: Mapping[str, jwt.PyJWK]
    fetched_at: float


class JwksCache:
    """Signing keys per issuer, from OpenID discovery, cached for ``ttl`` seconds.

    A token naming an unknown ``kid`` (the issuer may have rotated its keys) refetches
    the issuer's documents, but not more often than once per ``min_refetch_interval``
    seconds per issuer; failed fetches count too, so a failing issuer is not hammered.
    Each fetch (discovery plus JWKS) is bounded by ``timeout`` seconds in total.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        ttl: float = 600.0,
        min_refetch_interval: float = 30.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._min_refetch_interval = min_refetch_interval
        self._timeout = timeout
        self._clock = clock
        self._key_sets: dict[str, _KeySet] = {}
        self._attempted_at: dict[str, float] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def get_key(self, issuer: str, kid: str) -> jwt.PyJWK:
        """The issuer's signing key ``kid``, fetching or refetching as the rules allow.

        Raises:
            OidcError: the issuer URL is not allowed, its documents cannot be fetched or
                are invalid, or it has no usable key ``kid``.
        """
        _require_secure(issuer, "issuer")
        lock = self._locks.setdefault(issuer, anyio.Lock())
        async with lock:
            key_set = await self._key_set(issuer, kid)
        key = key_set.keys.get(kid)
        if key is None:
            raise OidcError("the token's signing key is unknown to its issuer")
        return key

    async def _key_set(self, issuer: str, kid: str) -> _KeySet:
        """The cached keys of ``issuer``, refreshed when stale or lacking ``kid``."""
        key_set = self._key_sets.get(issuer)
        now = self._clock()
        if key_set is None or now - key_set.fetched_at >= self._ttl:
            self._key_sets.pop(issuer, None)  # expired keys are never used
            return await self._refresh(issuer, now)
        if kid not in key_set.keys and self._may_fetch(issuer, now):
            return await self._refresh(issuer, now)
        return key_set

    def _may_fetch(self, issuer: str, now: float) -> bool:
        attempted = self._attempted_at.get(issuer)
        return attempted is None or now - attempted >= self._min_refetch_interval

    async def _refresh(self, issuer: str, now: float) -> _KeySet:
        if not self._may_fetch(issuer, now):
            raise OidcError("the issuer's signing keys are unavailable; retry later")
        self._attempted_at[issuer] = now
        try:
            with anyio.fail_after(self._timeout):
                keys = await self._fetch_keys(issuer)
        except TimeoutError as error:
            raise OidcError("timed out fetching the issuer's signing keys") from error
        key_set = _KeySet(MappingProxyType(keys), now)
        self._key_sets[issuer] = key_set
        return key_set

    async def _fetch_keys(self, issuer: str) -> dict[str, jwt.PyJWK]:
        # OpenID Connect Discovery 1.0, section 4: the path is appended to the issuer.
        discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        discovery = await self._get_json(discovery_url, "discovery document")
        if discovery.get("issuer") != issuer:  # Discovery section 4.3
            raise OidcError("the discovery document names a different issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise OidcError("the discovery document has no jwks_uri")
        _require_secure(jwks_uri, "jwks_uri")
        return _usable_keys(await self._get_json(jwks_uri, "JWKS"))

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        body = bytearray()
        try:
            async with self._client.stream(
                "GET",
                url,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
                follow_redirects=False,
            ) as response:
                if response.status_code != httpx.codes.OK:
                    raise OidcError(
                        f"the issuer's {what} answered {response.status_code}"
                    )
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_DOCUMENT_BYTES:
                        raise OidcError(f"the issuer's {what} is too large")
        except httpx.HTTPError as error:
            raise OidcError(f"cannot fetch the issuer's {what}") from error
        try:
            document = json.loads(body)
        except ValueError as error:
            raise OidcError(f"the issuer's {what} is not JSON") from error
        if not isinstance(document, dict):
            raise OidcError(f"the issuer's {what} is not a JSON object")
        return document


def _usable_keys(document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    """The JWKS's signing keys by ``kid``; the first key for a ``kid`` wins."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise OidcError("the issuer's JWKS has no list of keys")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        usable = _signing_key(entry)
        if usable is not None:
            keys.setdefault(*usable)
    if not keys:
        raise OidcError("the issuer's JWKS has no usable keys")
    return keys


def _signing_key(entry: object) -> tuple[str, jwt.PyJWK] | None:
    """A public signing key with a ``kid`` and an allowed algorithm, or ``None``.

    Whatever else an issuer may publish is skipped: encryption, symmetric or private
    keys, other algorithms, malformed entries. Membership tests use tuples, since a
    malformed entry may hold unhashable values.
    """
    if not isinstance(entry, dict):
        return None
    kid, alg = entry.get("kid"), entry.get("alg")
    if (
        not isinstance(kid, str)
        or entry.get("kty") not in _PUBLIC_KEY_TYPES
        or entry.get("use", "sig") != "sig"
        or "d" in entry  # a private key: never a verification key
        or (alg is not None and alg not in tuple(ALLOWED_ALGORITHMS))
    ):
        return None
    try:
        key = jwt.PyJWK(entry)
    except jwt.PyJWTError:
        return None
    return (kid, key) if key.algorithm_name in ALLOWED_ALGORITHMS else None


async def verify_id_token(
    token: str,
    identities: Sequence[OidcIdentity],
    jwks: JwksCache,
    *,
    now: float | None = None,
    leeway: int = 30,
) -> OidcIdentity:
    """Verify ``token`` and return the first identity it matches.

    Before the signature is checked, only the header (``alg``, ``kid``) and the
    unverified ``iss`` are read: ``iss`` merely selects candidate identities, and so
    which issuer's keys may verify the token.

    Args:
        token: the compact JWS the CI job presented.
        identities: configured identities, in priority order.
        jwks: the key cache used to find the issuer's key by the token's ``kid``.
        now: the current Unix time (tests); defaults to the system clock.
        leeway: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.

    Raises:
        OidcError: the token is malformed, from an unknown issuer, badly signed, out of
            its validity window, for another audience, or matches no identity.
    """
    if len(token) > _MAX_TOKEN_CHARS:
        raise OidcError("malformed ID token")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise OidcError("malformed ID token") from error
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in ALLOWED_ALGORITHMS:
        raise OidcError("the ID token's algorithm is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise OidcError("the ID token has no key id")
    issuer = unverified.get("iss")
    candidates = [identity for identity in identities if identity.issuer == issuer]
    if not isinstance(issuer, str) or not candidates:
        raise OidcError("the ID token's issuer is not trusted")

    key = await jwks.get_key(issuer, kid)
    claims = _decode(token, key, issuer, [identity.audience for identity in candidates])
    _check_validity(claims, time.time() if now is None else now, leeway)
    for identity in candidates:
        if matches(identity, claims):
            return identity
    raise OidcError("the ID token matches no configured OIDC identity")


def _decode(
    token: str, key: jwt.PyJWK, issuer: str, audiences: list[str]
) -> dict[str, Any]:
    """Check signature, ``iss`` and ``aud`` with PyJWT; the caller checks the times."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=sorted(ALLOWED_ALGORITHMS),
            audience=audiences,
            issuer=issuer,
            options={
                "require": list(_REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.MissingRequiredClaimError as error:
        raise OidcError(f"the ID token lacks the {error.claim} claim") from error
    except jwt.InvalidAudienceError as error:
        raise OidcError("the ID token is for another audience") from error
    except jwt.InvalidSignatureError as error:
        raise OidcError("the ID token's signature is invalid") from error
    except jwt.InvalidAlgorithmError as error:
        raise OidcError("the ID token's algorithm is not allowed") from error
    except jwt.InvalidKeyError as error:  # e.g. an RSA key shorter than 2048 bits
        raise OidcError("the issuer's signing key is unusable") from error
    except jwt.PyJWTError as error:
        raise OidcError("invalid ID token") from error


def _check_validity(claims: Mapping[str, Any], now: float, leeway: int) -> None:
    """RFC 7519 sections 4.1.4-4.1.6, with ``leeway`` seconds of clock skew."""
    expires = _time_claim(claims, "exp")
    issued = _time_claim(claims, "iat")
    not_before = _time_claim(claims, "nbf") if "nbf" in claims else issued
    if expires <= now - leeway:
        raise OidcError("the ID token has expired")
    if max(issued, not_before) > now + leeway:
        raise OidcError("the ID token is not yet valid")


def _time_claim(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    # bool is an int, and Python's json accepts NaN and Infinity: neither is a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OidcError(f"the ID token's {name} claim is not a number")
    if not math.isfinite(value):
        raise OidcError(f"the ID token's {name} claim is not a number")
    return value
