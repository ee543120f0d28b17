"""The ``VulnerabilityStore`` protocol: an imported OSV feed and what it matches.

Tables (``schema.py``): ``vulnerabilities`` (one row per OSV document, kept whole),
``vulnerability_packages`` (the (ecosystem, name) pairs each affects: the index the
matcher looks candidates up in), ``image_vulnerabilities`` (the matches of one image
manifest, by digest). The store reads ``image_packages`` and ``image_descriptions``
(written by the SBOM part) and ``pull_daily`` (who pulled what) but never writes them.
Package names in ``vulnerability_packages`` are stored as the registry layer keys
them (``registry/osv.package_key``); the store compares them as given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One OSV document as imported."""

    id: str
    modified: float
    severity: str
    summary: str | None
    aliases: tuple[str, ...]
    document: Mapping[str, Any]
    # The (ecosystem, package key) pairs it affects; empty for a withdrawn one.
    packages: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ImportCounts:
    added: int
    updated: int
    unchanged: int  # not newer than the stored one (``modified``)


@dataclass(frozen=True, slots=True)
class StoredVulnerability:
    id: str
    modified: float
    severity: str
    summary: str | None
    aliases: tuple[str, ...]
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ImagePackage:
    ecosystem: str
    name: str
    version: str
    purl: str
    path: str


@dataclass(frozen=True, slots=True)
class Match:
    """A vulnerability found in one package of an image."""

    vulnerability: str
    ecosystem: str
    package: str
    version: str
    fixed: str | None  # the version that fixes it here; None: no fix known
    severity: str


@dataclass(frozen=True, slots=True)
class MatchDetail:
    match: Match
    summary: str | None
    aliases: tuple[str, ...]
    matched_at: float


@dataclass(frozen=True, slots=True)
class Description:
    """An image manifest's description state (``image_descriptions``)."""

    digest: str
    state: str  # done | failed | skipped
    described_at: float


class VulnerabilityStore(Protocol):
    async def upsert(
        self, records: Sequence[FeedRecord], *, now: float
    ) -> ImportCounts:
        """Store ``records`` in one transaction: a new id is added; a stored one is
        replaced (document and package rows) only when ``modified`` is newer."""
        ...

    async def get(self, vulnerability: str) -> StoredVulnerability | None: ...

    async def candidates(
        self, keys: Collection[tuple[str, str]]
    ) -> list[StoredVulnerability]:
        """Every vulnerability affecting one of the (ecosystem, package key) pairs,
        each once, sorted by id."""
        ...

    async def description(self, digest: str) -> Description | None: ...

    async def packages(self, digest: str) -> list[ImagePackage]:
        """The packages found in an image manifest (empty if not described)."""
        ...

    async def matches(self, digest: str) -> list[MatchDetail]:
        """An image's matches, worst severity first, then by vulnerability id."""
        ...

    async def replace_matches(
        self, digest: str, matches: Sequence[Match], *, now: float
    ) -> None:
        """Make ``matches`` the image's matches, in one transaction. A match that
        was there before keeps its ``matched_at``."""
        ...

    async def counts(self, digest: str) -> dict[str, int]:
        """Matches of an image per severity (only severities present)."""
        ...

    async def pulled_in(self, digest: str, since: float) -> list[str]:
        """Repositories in which ``digest`` was pulled at or after ``since``
        (``pull_daily``), sorted."""
        ...

    async def enqueue_described(
        self, after: str, limit: int, tag: str, *, now: float
    ) -> list[str]:
        """Enqueue a ``match`` message (key ``match:<digest>:<tag>``) for the next
        ``limit`` described images (state done) whose digest sorts after ``after``,
        in one transaction. Returns their digests, sorted (page on with the last)."""
        ...
