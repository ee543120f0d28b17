"""``WebStore``: what the web catalog reads in bulk and its sign-in sessions.

The store decides nothing about who may see what: it hands repository rows with their
settings to ``AccessService`` (the domain decides), and keeps sessions by the hash of
their id only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CatalogRow:
    """A repository with its stored settings (``visibility`` None: no settings row,
    so the configured defaults apply)."""

    name: str
    created_at: float
    visibility: str | None
    starter_tags: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class TagRow:
    tag: str
    digest: str
    updated_at: float
    media_type: str
    content: bytes  # the manifest


@dataclass(frozen=True, slots=True)
class SessionUser:
    """The live user behind a session (sessions of disabled or deleted users, and
    expired ones, have none)."""

    user: str
    is_admin: bool
    csrf: str
    expires_at: float
    credential: str  # as stored at sign-in
    password_hash: str  # the user's now


class WebStore(Protocol):
    async def catalog(
        self,
        *,
        contains: str | None,
        after: str | None,
        limit: int,
        prefix: str | None = None,
        visibility: tuple[str | None, ...] | None = None,
    ) -> list[CatalogRow]:
        """Up to ``limit`` repositories named after ``after``, in name order, whose
        name contains ``contains`` and starts with ``prefix`` (both literally: no
        wildcards), and, when ``visibility`` is given, whose stored visibility is
        one of it (None: no settings row)."""
        ...

    async def organizations(self) -> list[tuple[str, str | None]]:
        """Each (first name component, stored visibility or None) that some
        repository with a "/" in its name has: one row per pair, sorted."""
        ...

    async def tag_rows(self, repository: str, tags: list[str]) -> list[TagRow]:
        """The named tags of ``repository`` with their manifests, in ``tags``' order
        (a tag that no longer exists is left out)."""
        ...

    async def create_session(
        self,
        id_hash: str,
        *,
        user: str,
        csrf: str,
        credential: str,
        now: float,
        expires_at: float,
    ) -> None: ...

    async def session_user(self, id_hash: str, *, now: float) -> SessionUser | None:
        """The enabled user of an unexpired session, or None."""
        ...

    async def delete_session(self, id_hash: str) -> None: ...

    async def purge_sessions(self, *, now: float) -> int:
        """Drop expired sessions; how many."""
        ...
