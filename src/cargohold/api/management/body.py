"""Reading management request bodies and query parameters, strictly.

A body is one JSON object of at most ``MAX_BODY`` bytes holding only the fields the
operation names. Each field is taken with its type checked here, so a wrong type is a
400 naming the field, never a ``TypeError`` deeper down. Value rules (name syntax,
password length, URL forms) stay in the domain layer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cargohold.oci.errors import Unsupported
from cargohold.registry.admin import InvalidRequest

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request

MAX_BODY = 64 * 1024
MAX_TEXT = 1024


class BodyTooLarge(InvalidRequest):
    message = "request body too large"
    status = 413


def _not_a_number(value: str) -> object:
    raise InvalidRequest(f"the body is not valid JSON ({value} is not a number)")


async def _read(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BodyTooLarge(f"bodies are limited to {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge(f"bodies are limited to {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_fields(request: Request, *allowed: str) -> Fields:
    """The request's JSON object, with no field outside ``allowed``.

    Raises:
        InvalidRequest: not JSON, not an object, or an unknown field.
        BodyTooLarge: more than ``MAX_BODY`` bytes.
        Unsupported: a ``Content-Type`` other than JSON.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if (
        media_type
        and media_type != "application/json"
        and not media_type.endswith("+json")
    ):
        raise Unsupported(f"send the body as application/json, not {media_type[:80]!r}")
    raw = await _read(request)
    try:
        data = json.loads(raw, parse_constant=_not_a_number)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0][:80]!r}; "
            f"expected {', '.join(allowed) or 'none'}"
        )
    return Fields(data)


class Fields:
    """Typed access to the fields of a JSON object; a JSON ``null`` counts as absent."""

    def __init__(self, data: Mapping[str, object]) -> None:
        self._data = data

    def as_dict(self) -> dict[str, object]:
        """The whole object, for documents the domain layer checks field by field."""
        return dict(self._data)

    def text(self, key: str, *, max_length: int = MAX_TEXT) -> str:
        value = self.optional_text(key, max_length=max_length)
        if value is None:
            raise InvalidRequest(f"{key!r} is required")
        return value

    def optional_text(self, key: str, *, max_length: int = MAX_TEXT) -> str | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"{key!r} must be a string")
        if len(value) > max_length:
            raise InvalidRequest(f"{key!r} is longer than {max_length} characters")
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> str:
        value = self.optional_choice(key, options)
        if value is None:
            raise InvalidRequest(f"{key!r} is required (one of {', '.join(options)})")
        return value

    def optional_choice(self, key: str, options: tuple[str, ...]) -> str | None:
        value = self.optional_text(key)
        if value is not None and value not in options:
            raise InvalidRequest(f"{key!r} must be one of {', '.join(options)}")
        return value

    def flag(self, key: str, *, default: bool) -> bool:
        value = self._data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise InvalidRequest(f"{key!r} must be true or false")
        return value

    def positive_number(self, key: str, *, maximum: float) -> float | None:
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{key!r} must be a number")
        if not 0 < value <= maximum:  # 1e999 parses as inf, refused here
            raise InvalidRequest(f"{key!r} must be more than 0 and at most {maximum:g}")
        return float(value)

    def patterns(self, key: str) -> list[str] | None:
        """A list of non-empty glob patterns (tags), or ``None``."""
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(item, str) and 0 < len(item) <= 128  # noqa: PLR2004 - tag length
            for item in value
        ):
            raise InvalidRequest(f"{key!r} must be a list of glob patterns (strings)")
        if len(value) > 100:  # noqa: PLR2004
            raise InvalidRequest(f"{key!r} may hold at most 100 patterns")
        return list(value)

    def strings(self, key: str, *, max_items: int = 100) -> list[str] | None:
        """A list of strings (values checked by the domain), or ``None``."""
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"{key!r} must be a list of strings")
        if len(value) > max_items:
            raise InvalidRequest(f"{key!r} may hold at most {max_items} items")
        return list(value)

    def labels(self, key: str) -> dict[str, str] | None:
        """An object of string values (claim name to glob), or ``None``."""
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(item, str) and len(item) <= MAX_TEXT for item in value.values()
        ):
            raise InvalidRequest(f"{key!r} must be an object of strings")
        return dict(value)


def query_int(
    request: Request, key: str, *, default: int, minimum: int, maximum: int
) -> int:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    if not (
        raw.isascii()
        and raw.isdigit()
        and len(raw) <= 18  # noqa: PLR2004
        and minimum <= int(raw) <= maximum
    ):
        raise InvalidRequest(
            f"{key!r} must be a whole number from {minimum} to {maximum}"
        )
    return int(raw)
