"""Repository names and tags (spec.md, "Pulling manifests" grammar)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cargohold.oci.errors import ManifestInvalid, NameInvalid, PaginationInvalid

# spec: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# Distribution and most clients cap the whole name (with the host) at 255 characters.
MAX_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class RepositoryName:
    """A repository name such as ``library/alpine`` (nested paths allowed)."""

    value: str

    @classmethod
    def parse(cls, text: str) -> RepositoryName:
        if len(text) > MAX_NAME_LENGTH:
            raise NameInvalid(
                f"repository name longer than {MAX_NAME_LENGTH} characters"
            )
        if not _NAME.fullmatch(text):
            raise NameInvalid(f"invalid repository name: {text[:MAX_NAME_LENGTH]!r}")
        return cls(text)

    @property
    def namespace(self) -> str:
        """The first path component (the organization that owns the repository)."""
        return self.value.split("/", 1)[0]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Tag:
    """A tag: up to 128 characters of ``[a-zA-Z0-9_.-]``, not starting with . or -."""

    value: str

    @classmethod
    def parse(cls, text: str) -> Tag:
        if not _TAG.fullmatch(text):
            raise ManifestReferenceInvalid(text)
        return cls(text)

    def __str__(self) -> str:
        return self.value


def is_tag(text: str) -> bool:
    return bool(_TAG.fullmatch(text))


class ManifestReferenceInvalid(ManifestInvalid):
    """A manifest reference that is neither a tag nor a digest."""

    def __init__(self, text: str) -> None:
        super().__init__(f"invalid tag: {text[:200]!r}")


def page_size(text: str | None, *, maximum: int) -> int | None:
    """Parse the ``n`` pagination parameter; ``None`` when absent.

    Values above ``maximum`` are clamped (the spec lets a registry return fewer results
    than asked, with a ``Link`` to the rest); negatives and garbage are an error.
    """
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()):
        raise PaginationInvalid(f"n must be a non-negative integer, got {text[:40]!r}")
    return min(int(text), maximum)
