"""``Authenticator``: turns credentials into a ``Principal``.

Credentials come as a username and password (HTTP Basic or the OAuth2 password grant):

* a user's password (argon2id);
* a pull token (``chp_<id>_<secret>``) as the password, any username;
* a CI job's OIDC ID token (a JWT) as the password; the username may name the identity;

or as a refresh token (``chr_<id>_<secret>``) from an earlier login. Every failure looks
the same to the client, takes about the same time, counts toward the throttle, and is
written to the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from cargohold.auth import passwords
from cargohold.auth.policy import Principal
from cargohold.auth.throttle import LoginThrottle
from cargohold.metadata.accounts import AccountStore, RefreshTokenRecord
from cargohold.oci.errors import TooManyRequests, Unauthorized
from cargohold.registry.audit import AuditTrail
from cargohold.settings import AuthSettings

if TYPE_CHECKING:
    from cargohold.auth.oidc import JwksCache

REMEMBER_LOGIN_SECONDS = 600.0
MAX_REMEMBERED_LOGINS = 10_000
PULL_TOKEN_PREFIX = "chp_"  # noqa: S105 - a prefix, not a secret
REFRESH_TOKEN_PREFIX = "chr_"  # noqa: S105 - a prefix, not a secret


def split_secret(value: str, prefix: str) -> tuple[str, str] | None:
    """``<prefix><id>_<secret>`` → (id, secret).

    ``None`` when it is not of that form.
    """
    if not value.startswith(prefix):
        return None
    token_id, sep, secret = value[len(prefix) :].partition("_")
    if not sep or len(token_id) != 32 or not secret:  # noqa: PLR2004 - uuid4 hex
        return None
    return token_id, secret


def _looks_like_jwt(value: str) -> bool:
    return value.startswith("eyJ") and value.count(".") == 2  # noqa: PLR2004


class Authenticator:
    def __init__(
        self,
        accounts: AccountStore,
        settings: AuthSettings,
        audit: AuditTrail,
        jwks: JwksCache | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._accounts = accounts
        self._clock = clock  # wall time, for expiry; injected so tests can move it
        self._settings = settings
        self._audit = audit
        self._jwks = jwks
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[tuple[str, str], tuple[bytes, float]] = {}
        self._throttle = LoginThrottle(
            per_identity=settings.max_failures_per_identity,
            per_client=settings.max_failures_per_client,
            window=settings.failure_window_seconds,
        )

    async def login(self, username: str, password: str, *, client: str) -> Principal:
        """The principal that ``username`` and ``password`` log in as.

        Raises ``Unauthorized`` (bad credentials) or ``TooManyRequests`` (throttled).
        """
        identity = username or "-"
        wait = self._throttle.retry_after(identity, client)
        if wait:
            self._audit.record(
                identity, "login", identity, outcome="throttled", client=client
            )
            raise TooManyRequests(
                "too many failed logins; try again later",
                headers={"Retry-After": str(wait)},
            )
        principal = await self._check(username, password)
        if principal is None:
            self._throttle.failed(identity, client)
            self._audit.record(
                identity, "login", identity, outcome="failed", client=client
            )
            raise Unauthorized("invalid username or password")
        self._throttle.succeeded(identity)
        self._audit.record(principal.subject, "login", identity, client=client)
        return principal

    async def _check(self, username: str, password: str) -> Principal | None:
        pull_token = split_secret(password, PULL_TOKEN_PREFIX)
        if pull_token is not None:
            return await self._pull_token(*pull_token)
        if _looks_like_jwt(password):
            return await self._oidc(username, password)
        user = await self._accounts.users.get(username)
        if user is not None and self._recently_verified(
            user.name, user.password_hash, password
        ):
            ok = True
        else:
            ok = passwords.verify_password(
                user.password_hash if user else None, password
            )
            if ok and user is not None:
                self._remember(user.name, user.password_hash, password)
        if user is None or not ok or user.disabled:
            return None
        return Principal("user", f"user:{user.name}", is_admin=user.is_admin)

    # Clients send the password with every token request (one per pull or push), and
    # argon2id is slow on purpose (~0.5 s of CPU here). A successful check is remembered
    # for a while, keyed by the user's *current* password hash, so a changed password
    # invalidates it everywhere at once. Only a keyed hash of the password is kept.
    def _fingerprint(self, password: str) -> bytes:
        return hmac.new(self._cache_key, password.encode(), hashlib.sha256).digest()

    def _recently_verified(self, name: str, password_hash: str, password: str) -> bool:
        entry = self._verified.get((name, password_hash))
        if entry is None or entry[1] < time.monotonic():
            return False
        return hmac.compare_digest(entry[0], self._fingerprint(password))

    def _remember(self, name: str, password_hash: str, password: str) -> None:
        if len(self._verified) >= MAX_REMEMBERED_LOGINS:
            self._verified.clear()
        self._verified[(name, password_hash)] = (
            self._fingerprint(password),
            time.monotonic() + REMEMBER_LOGIN_SECONDS,
        )

    async def _pull_token(self, token_id: str, secret: str) -> Principal | None:
        record = await self._accounts.pull_tokens.get(token_id)
        ok = passwords.secret_matches(record.secret_hash if record else None, secret)
        if record is None or not ok or record.revoked_at is not None:
            return None
        if record.expires_at is not None and record.expires_at <= self._clock():
            return None
        return Principal("token", f"token:{record.id}")

    async def _oidc(self, username: str, id_token: str) -> Principal | None:
        from cargohold.auth import oidc  # noqa: PLC0415 - only CI logins need it

        if self._jwks is None:
            return None
        records = await self._accounts.oidc.all()
        if username and any(r.name == username for r in records):
            records = [r for r in records if r.name == username]
        identities = [
            oidc.OidcIdentity(r.name, r.issuer, r.audience, r.subject, r.claims)
            for r in records
        ]
        try:
            identity = await oidc.verify_id_token(id_token, identities, self._jwks)
        except oidc.OidcError:
            return None
        return Principal("oidc", f"oidc:{identity.name}")

    async def refresh(self, refresh_token: str, *, client: str) -> Principal:
        parsed = split_secret(refresh_token, REFRESH_TOKEN_PREFIX)
        record = await self._accounts.refresh_tokens.get(parsed[0]) if parsed else None
        ok = passwords.secret_matches(
            record.secret_hash if record else None, parsed[1] if parsed else ""
        )
        if (
            record is None
            or not ok
            or record.revoked_at is not None
            or record.expires_at <= self._clock()
        ):
            self._throttle.failed("refresh", client)
            self._audit.record("-", "refresh", "-", outcome="failed", client=client)
            raise Unauthorized("invalid or expired refresh token")
        kind, _, name = record.principal.partition(":")
        is_admin = False
        if kind == "user":
            user = await self._accounts.users.get(name)
            if user is None or user.disabled:
                raise Unauthorized("invalid or expired refresh token")
            is_admin = user.is_admin
        return Principal(kind, record.principal, is_admin=is_admin)

    async def issue_refresh_token(self, principal: Principal) -> str:
        token_id, secret = uuid.uuid4().hex, passwords.new_secret()
        now = self._clock()
        await self._accounts.refresh_tokens.create(
            RefreshTokenRecord(
                token_id,
                principal.subject,
                passwords.hash_secret(secret),
                now,
                now + self._settings.refresh_token_ttl_days * 86400,
                None,
            )
        )
        return f"{REFRESH_TOKEN_PREFIX}{token_id}_{secret}"
