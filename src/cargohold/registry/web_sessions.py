"""``WebSessions``: signing in to the web catalog with a user's registry password.

The password is checked by the ``Authenticator`` (the same argon2id hashes, the same
login throttle and audit trail as ``/token``); only users sign in here (a pull token or
a CI identity's token is for clients). A session is a random id in a cookie; the
database keeps only its SHA-256, with the user and the session's form (CSRF) token, so
signing out, a new password, or disabling or deleting the user ends it in every
process at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cargohold.auth.policy import Principal
from cargohold.oci.errors import Unauthorized

if TYPE_CHECKING:
    from cargohold.metadata.accounts import UserIndex
    from cargohold.metadata.web import WebStore
    from cargohold.registry.accounts import Authenticator

SESSION_SECONDS = 12 * 3600.0
_MAX_COOKIE = 200  # characters: anything longer is not one of ours


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def credential_of(password_hash: str) -> str:
    """What a session remembers of the password it was opened with."""
    return hashlib.sha256(password_hash.encode()).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class NewSession:
    session_id: str  # the cookie's value (never stored)
    expires_at: float


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    user: str
    csrf: str  # the session's form token


class WebSessions:
    def __init__(
        self,
        store: WebStore,
        authenticator: Authenticator,
        users: UserIndex,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._authenticator = authenticator
        self._users = users
        self._clock = clock

    async def sign_in(self, username: str, password: str, *, client: str) -> NewSession:
        """A new session for the user ``username``.

        Raises:
            Unauthorized: wrong credentials, a disabled user, or credentials that are
                not a user's password (one message for all: nothing tells which).
            TooManyRequests: too many failed logins (the registry's throttle).
        """
        principal = await self._authenticator.login(username, password, client=client)
        user = (
            await self._users.get(principal.subject.removeprefix("user:"))
            if principal.kind == "user"
            else None
        )
        if user is None:
            raise Unauthorized("invalid username or password")
        now = self._clock()
        session_id = secrets.token_urlsafe(32)
        expires = now + SESSION_SECONDS
        await self._store.purge_sessions(now=now)
        await self._store.create_session(
            _hash(session_id),
            user=user.name,
            csrf=secrets.token_urlsafe(32),
            credential=credential_of(user.password_hash),
            now=now,
            expires_at=expires,
        )
        return NewSession(session_id, expires)

    async def current(self, session_id: str | None) -> SignedIn | None:
        """Who holds the session ``session_id``; None if nobody (unknown, expired,
        signed out, or its user disabled or deleted)."""
        if not session_id or len(session_id) > _MAX_COOKIE:
            return None
        found = await self._store.session_user(_hash(session_id), now=self._clock())
        # A password changed since sign-in ends the session.
        if found is None or not same_secret(
            found.credential, credential_of(found.password_hash)
        ):
            return None
        principal = Principal("user", f"user:{found.user}", is_admin=found.is_admin)
        return SignedIn(principal, found.user, found.csrf)

    async def sign_out(self, session_id: str) -> None:
        await self._store.delete_session(_hash(session_id))
