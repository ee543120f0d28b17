"""``VulnerabilityService``: the OSV feed, matching images against it, the view.

* ``import_feed`` reads an offline OSV feed (``registry/osv_feed.py``) twice: once to
  check every document (nothing is written if one is bad: the error names its file),
  then to store it in batches (bounded memory). Then every described image is queued
  for matching again (outbox ``match`` messages, in pages).
* ``match`` is the outbox handler of channel ``match`` (one digest; idempotent: it
  recomputes the image's matches from its packages and the feed). Version comparison
  is CPU work and runs in a worker thread under a ``CapacityLimiter``.
* A vulnerability newly matched in an image pulled within the advisories window
  (``advisories.affected_window_days``) opens a **draft** advisory, once per
  (vulnerability, repository): nobody is told until an administrator publishes it.
* ``view`` is an image's matches and counts, for whoever may pull the manifest
  (tag limits and tiers as for the manifest itself).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread

from cargohold.auth.policy import Principal
from cargohold.metadata.store import MetadataStore
from cargohold.metadata.vulns import (
    FeedRecord,
    ImagePackage,
    ImportCounts,
    Match,
    MatchDetail,
    StoredVulnerability,
    VulnerabilityStore,
)
from cargohold.oci.digest import Digest
from cargohold.oci.names import RepositoryName, Tag
from cargohold.registry.access import AccessService
from cargohold.registry.admin import NotFound
from cargohold.registry.advisories import AdvisoryService
from cargohold.registry.advisory_document import ALIAS, MAX_ALIASES
from cargohold.registry.limits import TagLimits
from cargohold.registry.osv import (
    OsvEntry,
    affects,
    base_ecosystem,
    package_key,
    parse_osv,
    worse,
)
from cargohold.registry.osv_feed import read_feed

log = logging.getLogger(__name__)

DAY = 86_400.0
IMPORT_BATCH = 500  # documents per transaction
REQUEUE_PAGE = 500  # match messages per transaction after an import


class HasPayload(Protocol):
    """What ``match`` needs of an outbox item (``registry/outbox.OutboxItem``)."""

    @property
    def payload(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ImportResult:
    documents: int
    counts: ImportCounts
    queued: int  # images queued for matching again


@dataclass(frozen=True, slots=True)
class ImageView:
    repository: str
    digest: str
    described: bool
    counts: dict[str, int]
    matches: list[MatchDetail]


def record_of(entry: OsvEntry) -> FeedRecord:
    return FeedRecord(
        id=entry.id,
        modified=entry.modified,
        severity=entry.severity,
        summary=entry.summary,
        aliases=entry.aliases,
        document=entry.document,
        packages=() if entry.withdrawn else entry.packages,
    )


def image_key(package: ImagePackage) -> tuple[str, str]:
    """How an image's package is looked up in the feed: (OSV ecosystem without a
    release suffix, the ecosystem's normalised name)."""
    ecosystem = base_ecosystem(package.ecosystem)
    return ecosystem, package_key(ecosystem, package.name)


def match_packages(
    packages: Sequence[ImagePackage], candidates: Sequence[StoredVulnerability]
) -> list[Match]:
    """Every (vulnerability, package) match, with the fix and the severity. Pure."""
    by_key: dict[tuple[str, str], list[ImagePackage]] = {}
    for package in packages:
        by_key.setdefault(image_key(package), []).append(package)
    found: dict[tuple[str, str, str, str], Match] = {}
    for stored in candidates:
        entry = parse_osv(stored.document)
        if entry.withdrawn:
            continue
        for affected in entry.affected:
            key = (affected.ecosystem, package_key(affected.ecosystem, affected.name))
            for package in by_key.get(key, ()):
                verdict = affects(affected, package.version)
                if verdict is None:
                    continue
                ident = (entry.id, package.ecosystem, package.name, package.version)
                severity = worse(entry.severity, affected.severity)
                held = found.get(ident)
                if held is not None:  # two entries for one package: keep both facts
                    severity = worse(severity, held.severity)
                    fixed = held.fixed or verdict.fixed
                else:
                    fixed = verdict.fixed
                found[ident] = Match(*ident, fixed=fixed, severity=severity)
    return [found[k] for k in sorted(found)]


def _batches(entries: Iterator[OsvEntry], size: int) -> Iterator[list[FeedRecord]]:
    while batch := [record_of(e) for e in itertools.islice(entries, size)]:
        yield batch


def draft_id(vulnerability: str, repository: str) -> str:
    """The draft advisory's id: one per (vulnerability, repository)."""
    where = hashlib.sha256(repository.encode()).hexdigest()[:12]
    return f"{vulnerability[:51]}:{where}"


class VulnerabilityService:
    def __init__(
        self,
        store: VulnerabilityStore,
        meta: MetadataStore,
        limits: TagLimits,
        access: AccessService,
        advisories: AdvisoryService,
        *,
        window_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._meta = meta
        self._limits = limits
        self._access = access
        self._advisories = advisories
        self._window = window_days * DAY
        self._clock = clock
        # Matching is CPU work in threads; one at a time per process.
        self._cpu = anyio.CapacityLimiter(1)

    async def import_feed(self, path: Path) -> ImportResult:
        """Check every document of the feed, then store it and queue re-matching.

        Raises:
            FeedInvalid: the feed or one of its documents (named) is not valid;
                nothing was stored.
        """
        documents = await anyio.to_thread.run_sync(
            lambda: sum(1 for _ in read_feed(path)), limiter=self._cpu
        )
        entries = read_feed(path)
        batches = _batches(entries, IMPORT_BATCH)
        added = updated = unchanged = 0
        now = self._clock()
        while batch := await anyio.to_thread.run_sync(
            lambda: next(batches, []), limiter=self._cpu
        ):
            counts = await self._store.upsert(batch, now=now)
            added += counts.added
            updated += counts.updated
            unchanged += counts.unchanged
        queued = 0
        if added or updated:
            queued = await self.requeue(tag=f"feed:{int(now * 1000)}")
        return ImportResult(documents, ImportCounts(added, updated, unchanged), queued)

    async def requeue(self, *, tag: str) -> int:
        """Queue a ``match`` of every described image (pages of ``REQUEUE_PAGE``)."""
        after, queued = "", 0
        while digests := await self._store.enqueue_described(
            after, REQUEUE_PAGE, tag, now=self._clock()
        ):
            queued += len(digests)
            after = digests[-1]
        return queued

    async def match(self, item: HasPayload) -> None:
        """The ``match`` handler: recompute one image's matches. Idempotent."""
        digest = str(item.payload["digest"])
        description = await self._store.description(digest)
        if description is None or description.state != "done":
            return  # not described (yet): ``describe`` queues a match when it is
        packages = await self._store.packages(digest)
        keys = {image_key(p) for p in packages}
        candidates = await self._store.candidates(keys)
        matches = await anyio.to_thread.run_sync(
            match_packages, packages, candidates, limiter=self._cpu
        )
        before = {m.match.vulnerability for m in await self._store.matches(digest)}
        new = [m for m in matches if m.vulnerability not in before]
        if new:
            # Drafts first: a kill -9 before the matches commit opens them again
            # on the retry, where they exist already (once per id).
            await self._open_drafts(digest, new, candidates)
        await self._store.replace_matches(digest, matches, now=self._clock())
        log.info(
            "matched %s: %d vulnerabilities (%d new)",
            digest,
            len({m.vulnerability for m in matches}),
            len({m.vulnerability for m in new}),
        )

    async def _open_drafts(
        self,
        digest: str,
        new: Sequence[Match],
        candidates: Sequence[StoredVulnerability],
    ) -> None:
        repositories = await self._store.pulled_in(digest, self._clock() - self._window)
        if not repositories:
            return
        known = {v.id: v for v in candidates}
        by_vulnerability: dict[str, list[Match]] = {}
        for match in new:
            by_vulnerability.setdefault(match.vulnerability, []).append(match)
        for ident, found in sorted(by_vulnerability.items()):
            for repository in repositories:
                document = draft_document(known[ident], repository, digest, found)
                if await self._advisories.open_draft(document) is not None:
                    log.info("draft advisory %s opened", document["id"])

    async def view(
        self, actor: Principal, repository: RepositoryName, reference: Digest | Tag
    ) -> ImageView:
        """An image's matches and counts by severity (by digest, or a tag's).

        Raises:
            NotFound: no such manifest in the repository, or the caller may not pull
                it (the same answer either way).
        """
        refused = NotFound(
            f"no manifest {reference} in {repository.value} you may pull"
        )
        access = await self._access.pull_access(actor, repository)
        if access is None:
            raise refused
        if isinstance(reference, Tag):
            if not access.allows_tag(reference.value):
                raise refused
            record = await self._meta.manifests.by_tag(
                repository.value, reference.value
            )
        else:
            record = await self._meta.manifests.by_digest(
                repository.value, str(reference)
            )
            if record is not None and not await self._limits.reaches(access, reference):
                raise refused
        if record is None:
            raise refused
        description = await self._store.description(record.digest)
        return ImageView(
            repository=repository.value,
            digest=record.digest,
            described=description is not None and description.state == "done",
            counts=await self._store.counts(record.digest),
            matches=await self._store.matches(record.digest),
        )


def draft_document(
    vulnerability: StoredVulnerability,
    repository: str,
    digest: str,
    found: Sequence[Match],
) -> dict[str, Any]:
    """A draft advisory for one vulnerability found in one repository's image."""
    severity = vulnerability.severity
    for match in found:
        severity = worse(severity, match.severity)
    lines = [
        (
            f"{vulnerability.id} was found by the registry's vulnerability matching "
            f"in `{repository}@{digest}`, which was pulled recently."
        ),
        "",
        *(
            f"- {m.ecosystem} `{m.package}` {m.version}: "
            + (f"fixed in {m.fixed}" if m.fixed else "no fix known")
            for m in found
        ),
    ]
    if vulnerability.summary:
        lines[:0] = [vulnerability.summary, ""]
    title = f"{vulnerability.id} in {repository}"
    return {
        "id": draft_id(vulnerability.id, repository),
        "title": title[:200],
        # Advisories have no "unknown": an unrated vulnerability is drafted as low, and
        # the administrator rates it before publishing.
        "severity": "low" if severity == "unknown" else severity,
        "state": "draft",
        "description": "\n".join(lines)[: 32 * 1024],
        "affected": [{"repository": repository, "digests": [digest], "tags": []}],
        "fixed_in": None,
        "aliases": _aliases(vulnerability),
        "url": None,
    }


def _aliases(vulnerability: StoredVulnerability) -> list[str]:
    candidates = [vulnerability.id, *vulnerability.aliases]
    return [a for a in candidates if ALIAS.match(a)][:MAX_ALIASES]
