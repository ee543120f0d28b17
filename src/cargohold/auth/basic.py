"""HTTP Basic credentials (RFC 7617), parsed without trusting them."""

from __future__ import annotations

import base64
import binascii


class MalformedCredentials(ValueError):
    """The ``Basic`` value is not base64 of ``user:password``."""


def parse_basic(value: str) -> tuple[str, str]:
    """``(username, password)`` from the part of the header after ``Basic``."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedCredentials("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise MalformedCredentials("malformed Basic credentials")
    return username, password
