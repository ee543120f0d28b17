"""A real OIDC issuer for tests: HTTP on 127.0.0.1, its own keys, a token minter.

    with OidcIssuer() as issuer:
        token = issuer.mint("repo:acme/app:ref:refs/heads/main", "cargohold")

It serves ``/.well-known/openid-configuration`` and ``/jwks`` from a background thread
(stdlib ``ThreadingHTTPServer`` on a free port) and counts the requests it answers.
``mint`` also makes deliberately bad tokens: expired, for another audience, with an
unknown ``kid``, signed by a foreign key, ``alg: none`` or HS256 keyed by a public key.
Knobs for misbehaving issuers: ``discovery_overrides``, ``jwks_override``,
``jwks_status`` and ``delay`` (seconds before each answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

KeyKind = Literal["RSA", "EC", "Ed25519"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key, its ``kid`` and the JWS algorithm it signs with."""

    kid: str
    alg: str
    private_key: PrivateKey

    @classmethod
    def generate(cls, kind: KeyKind = "RSA", kid: str | None = None) -> SigningKey:
        private_key: PrivateKey
        if kind == "RSA":
            private_key, alg = rsa.generate_private_key(65537, 2048), "RS256"
        elif kind == "EC":
            private_key, alg = ec.generate_private_key(ec.SECP256R1()), "ES256"
        else:
            private_key, alg = ed25519.Ed25519PrivateKey.generate(), "EdDSA"
        return cls(kid or f"{kind.lower()}-{secrets.token_hex(4)}", alg, private_key)

    def public_jwk(self) -> dict[str, Any]:
        return self._jwk(self.private_key.public_key())

    def private_jwk(self) -> dict[str, Any]:
        """The JWK with its private parts, as a careless issuer might publish it."""
        return self._jwk(self.private_key)

    def _jwk(self, key: object) -> dict[str, Any]:
        if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
        elif isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(key, as_dict=True)
        else:
            assert isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
            jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OidcIssuer:
    """An OIDC issuer on ``http://127.0.0.1:<free port><path>``; a context manager."""

    def __init__(
        self, *, path: str = "", keys: Sequence[KeyKind | SigningKey] = ("RSA", "EC")
    ) -> None:
        """Start with ``keys``: kinds to generate, or keys to reuse (RSA is slow)."""
        self.path = path
        self.keys: list[SigningKey] = [
            key if isinstance(key, SigningKey) else SigningKey.generate(key)
            for key in keys
        ]
        self.discovery_overrides: dict[str, Any] = {}
        self.jwks_status: int = HTTPStatus.OK
        self.jwks_override: dict[str, Any] | None = None
        self.delay = 0.0
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """The issuer identifier, as ``iss`` and the discovery document spell it."""
        if self._server is None:
            raise RuntimeError("the issuer is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    # -- keys -----------------------------------------------------------------------
    def key(self, alg: str = "RS256") -> SigningKey:
        """The newest published key for ``alg``."""
        return next(key for key in reversed(self.keys) if key.alg == alg)

    def rotate(self, kind: KeyKind = "RSA", *, retire: bool = True) -> SigningKey:
        """Publish a new ``kind`` key; with ``retire``, unpublish older ones of it."""
        new = SigningKey.generate(kind)
        with self._lock:
            kept = [key for key in self.keys if not retire or key.alg != new.alg]
            self.keys = [*kept, new]
        return new

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def discovery(self) -> dict[str, Any]:
        document = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        }
        return {**document, **self.discovery_overrides}

    # -- tokens ---------------------------------------------------------------------
    def mint(
        self,
        sub: str,
        aud: str | list[str],
        claims: Mapping[str, Any] | None = None,
        *,
        expires_in: float = 300,
        issued_at: float | None = None,
        not_before: float | None = None,
        iss: str | None = None,
        key: SigningKey | None = None,
        kid: str | None = None,
        alg: str | None = None,
    ) -> str:
        """A signed ID token; by default valid for five minutes, by the newest RSA key.

        ``key`` may be foreign (``SigningKey.generate()``, never published); ``kid``
        overrides the header's key id; ``alg="none"`` leaves the token unsigned and
        ``alg="HS256"`` signs it with HMAC keyed by the key's public PEM (the classic
        algorithm-confusion attack). ``claims`` may override any standard claim.
        """
        key = key or self.key()
        now = time.time() if issued_at is None else issued_at
        payload: dict[str, Any] = {
            "iss": self.url if iss is None else iss,
            "aud": aud,
            "sub": sub,
            "iat": int(now),
            "exp": int(now + expires_in),
        }
        if not_before is not None:
            payload["nbf"] = int(not_before)
        payload.update(claims or {})
        alg = alg or key.alg
        headers = {"kid": key.kid if kid is None else kid}
        if alg == "none":
            return jwt.encode(payload, "", algorithm="none", headers=headers)
        if alg.startswith("HS"):
            return _hmac_token(payload, headers, alg, key.public_pem())
        return jwt.encode(payload, key.private_key, algorithm=alg, headers=headers)

    # -- serving --------------------------------------------------------------------
    def _count(self, route: str) -> None:
        with self._lock:
            self.requests[route] = self.requests.get(route, 0) + 1


def _hmac_token(
    payload: dict[str, Any], headers: dict[str, str], alg: str, secret: bytes
) -> str:
    # Built by hand: PyJWT rightly refuses a PEM public key as an HMAC secret.
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[alg]
    header = {"alg": alg, "typ": "JWT", **headers}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode())
        for part in (header, payload)
    )
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _handler_for(issuer: OidcIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if issuer.delay:
                time.sleep(issuer.delay)
            route = self.path.removeprefix(issuer.path)
            issuer._count(route)
            if route == "/.well-known/openid-configuration":
                self._send_json(HTTPStatus.OK, issuer.discovery())
            elif route == "/jwks":
                jwks = issuer.jwks_override
                self._send_json(
                    issuer.jwks_status, issuer.jwks() if jwks is None else jwks
                )
            else:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def _send_json(self, status: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: tests read ``issuer.requests`` instead of a log."""

    return Handler
