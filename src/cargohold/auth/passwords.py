"""Password and secret hashing.

Passwords (chosen by people) are hashed with argon2id. Generated secrets (pull tokens,
refresh tokens: 256 random bits) are hashed with SHA-256, which is enough for secrets
that cannot be guessed, and compared in constant time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so the answer takes as long either way."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-time check.

    With ``None`` (no such user) it still spends the same time.
    """
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and (
            password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret_hash: str | None, secret: str) -> bool:
    expected = secret_hash or "0" * 64
    return (
        hmac.compare_digest(expected, hash_secret(secret)) and secret_hash is not None
    )
