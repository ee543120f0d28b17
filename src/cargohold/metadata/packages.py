"""``PackageStore``: what the registry found in image manifests (tables
``image_descriptions`` and ``image_packages``).

One description per manifest digest: the same content pushed to several repositories
is read once. The store decides nothing about who may read what
(``registry/sbom/service.py`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cargohold.metadata.outbox import OutboxMessage

DONE, FAILED, SKIPPED = "done", "failed", "skipped"


@dataclass(frozen=True, slots=True)
class PackageRecord:
    ecosystem: str  # OSV's name: Debian, Ubuntu, Alpine, Wolfi, PyPI, npm, Go
    name: str
    version: str
    purl: str
    path: str  # where in the image it was found
    license: str | None = None


@dataclass(frozen=True, slots=True)
class Description:
    """``state``: ``done``, ``failed`` (``error`` says why) or ``skipped`` (not an
    image: an index or an artifact). ``facts``: platform, created, labels, sizes."""

    digest: str
    repository: str  # the repository it was read from
    state: str
    described_at: float
    facts: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    package_count: int = 0


class PackageStore(Protocol):
    async def description(self, digest: str) -> Description | None:
        """The digest's description, or None if it was never described."""
        ...

    async def packages(self, digest: str) -> list[PackageRecord]:
        """The digest's packages, ordered by ecosystem, name, version, path (code
        point order, whatever the database's collation)."""
        ...

    async def record(
        self,
        description: Description,
        packages: Sequence[PackageRecord],
        *,
        jobs: Sequence[OutboxMessage] = (),
    ) -> None:
        """Replace the digest's description and packages, and enqueue ``jobs``, in
        one transaction: a second call for the same digest leaves what one call
        would (``package_count`` is set from ``packages``)."""
        ...

    async def repositories_with(self, digest: str) -> list[str]:
        """The repositories holding a manifest with ``digest``, sorted."""
        ...
