"""``CatalogService``: what the web catalog shows, for whoever is looking.

Every read starts from the domain's access decision (``AccessService``): a repository
the viewer may not pull is treated exactly like one that does not exist, so its name
never reaches a page, a search result, a count or an error. Listing many repositories
reads them with their settings in one indexed, keyset-paged query and decides each in
memory (one grants lookup per request), so the home page stays fast at 10,000
repositories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cargohold.oci.errors import NameInvalid, RegistryError
from cargohold.oci.manifest import parse_manifest
from cargohold.oci.names import RepositoryName, Tag
from cargohold.registry.admin import NotFound
from cargohold.registry.image_metadata import manifest_kind
from cargohold.registry.jobs import attached_to

if TYPE_CHECKING:
    from cargohold.auth.policy import Grant, Principal
    from cargohold.metadata.advisories import AdvisoryRecord, TagMove
    from cargohold.metadata.packages import Description, PackageStore
    from cargohold.metadata.vulns import VulnerabilityStore
    from cargohold.metadata.web import CatalogRow, TagRow, WebStore
    from cargohold.registry.access import AccessService
    from cargohold.registry.advisories import AdvisoryService
    from cargohold.registry.limits import RepositoryAccess
    from cargohold.registry.manifests import ManifestService
    from cargohold.registry.tag_history import TagHistoryService
    from cargohold.registry.verify import VerifyService

REPOSITORY_PAGE = 50
TAG_PAGE = 20
# Rows read at a time while filling a page with visible repositories.
BATCH = 500
MAX_QUERY = 100  # characters of a search kept
DESCRIPTION_LABEL = "org.opencontainers.image.description"


@dataclass(frozen=True, slots=True)
class RepositoryEntry:
    name: str
    created_at: float

    @property
    def organization(self) -> str | None:
        head, sep, _ = self.name.partition("/")
        return head if sep else None


@dataclass(frozen=True, slots=True)
class RepositoryList:
    items: list[RepositoryEntry]
    # The name to continue after for the next page; None: this is the last page.
    next_after: str | None


@dataclass(frozen=True, slots=True)
class TagSummary:
    tag: str
    digest: str
    updated_at: float
    media_type: str
    kind: str  # "image" | "index" | "artifact"
    platforms: list[str]
    size: int | None  # compressed: config and layers (images only)
    created: str | None
    description: Description | None
    vulnerabilities: dict[str, int]
    signed: bool
    signatures: int
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RepositoryView:
    name: str
    description: str | None
    # The viewer sees only some tags (a public repository's starter tags, or a tag-
    # limited grant): said on the page so a missing tag is not a surprise.
    limited: bool
    tags: list[TagSummary]
    next_after: str | None
    advisories: list[AdvisoryRecord]
    history_tag: str | None
    history: list[TagMove]


def _literal_prefix(glob: str) -> str:
    """What every name a glob matches starts with (up to its first wildcard)."""
    for index, char in enumerate(glob):
        if char in "*?[":
            return glob[:index]
    return glob


def platform_text(value: Any) -> str:
    """``os/architecture[/variant]`` of an OCI platform object."""
    if not isinstance(value, dict):
        return "?"
    parts = [
        str(value.get(k)) for k in ("os", "architecture", "variant") if value.get(k)
    ]
    return "/".join(parts) or "?"


class CatalogService:
    def __init__(
        self,
        store: WebStore,
        access: AccessService,
        *,
        manifests: ManifestService,
        packages: PackageStore,
        vulnerabilities: VulnerabilityStore,
        verifier: VerifyService,
        advisories: AdvisoryService,
        history: TagHistoryService,
    ) -> None:
        self._store = store
        self._access = access
        self._manifests = manifests
        self._packages = packages
        self._vulns = vulnerabilities
        self._verifier = verifier
        self._advisories = advisories
        self._history = history

    def _visible(
        self, viewer: Principal, rows: list[CatalogRow], grants: list[Grant]
    ) -> list[RepositoryEntry]:
        policies = {
            r.name: self._access.policy_of(r.name, r.visibility, r.starter_tags)
            for r in rows
        }
        kept = {
            p.name
            for p in self._access.pullable_policies(viewer, grants, policies.values())
        }
        return [RepositoryEntry(r.name, r.created_at) for r in rows if r.name in kept]

    async def repositories(
        self,
        viewer: Principal,
        *,
        query: str | None = None,
        organization: str | None = None,
        after: str | None = None,
        limit: int = REPOSITORY_PAGE,
    ) -> RepositoryList:
        """A page of the repositories ``viewer`` may pull whose name contains
        ``query`` (in ``organization``, when given), in name order after ``after``."""
        contains = (query or "").strip().lower()[:MAX_QUERY] or None
        grants = await self._access.grants(viewer)
        # Without grants only public repositories can be pulled: the store skips
        # the rest (each row is still decided below).
        only = None if viewer.is_admin or grants else self._access.public_visibilities()
        shown: list[RepositoryEntry] = []
        cursor = after
        batch = max(limit + 1, BATCH)
        while True:
            rows = await self._store.catalog(
                contains=contains,
                prefix=f"{organization}/" if organization else None,
                after=cursor,
                limit=batch,
                visibility=only,
            )
            shown.extend(self._visible(viewer, rows, grants))
            if len(shown) > limit:
                return RepositoryList(shown[:limit], shown[limit - 1].name)
            if len(rows) < batch:
                return RepositoryList(shown, None)
            cursor = rows[-1].name

    async def organizations(self, viewer: Principal) -> list[str]:
        """The organizations (first name components) holding a repository the
        viewer may pull. One grouped query finds those with a public repository;
        the others are looked into only for a viewer holding grants, reading just
        the names each grant's glob can match (its literal prefix)."""
        groups = await self._store.organizations()
        shown = {
            org
            for org, visibility in groups
            if viewer.is_admin or self._access.policy_of(org, visibility, None).public
        }
        remaining = {org for org, _ in groups} - shown
        grants = await self._access.grants(viewer)
        for prefix in sorted({_literal_prefix(g.repository) for g in grants}):
            if not remaining:
                break
            if "/" in prefix and prefix.partition("/")[0] not in remaining:
                continue
            cursor = None
            while True:
                rows = await self._store.catalog(
                    contains="/", prefix=prefix, after=cursor, limit=BATCH
                )
                fresh = [r for r in rows if r.name.partition("/")[0] in remaining]
                for entry in self._visible(viewer, fresh, grants):
                    org = entry.name.partition("/")[0]
                    shown.add(org)
                    remaining.discard(org)
                if len(rows) < BATCH:
                    break
                cursor = rows[-1].name
        return sorted(shown)

    async def _pull_access(
        self, viewer: Principal, repository: str
    ) -> tuple[RepositoryName, RepositoryAccess]:
        refused = NotFound("no such repository")
        try:
            name = RepositoryName.parse(repository)
        except NameInvalid:
            raise refused from None
        access = await self._access.pull_access(viewer, name)
        if access is None:
            raise refused
        return name, access

    async def repository(
        self,
        viewer: Principal,
        repository: str,
        *,
        after: str | None = None,
        limit: int = TAG_PAGE,
        history_tag: str | None = None,
    ) -> RepositoryView:
        """The repository page's content.

        Raises:
            NotFound: no such repository, or the viewer may not pull from it (one
                answer, with no name in it, either way).
        """
        name, access = await self._pull_access(viewer, repository)
        try:
            page = await self._manifests.tags(access, last=after, limit=limit)
        except RegistryError:  # NameUnknown: nothing there
            raise NotFound("no such repository") from None
        tags = [t for t in page.items if attached_to(t) is None]
        rows = await self._store.tag_rows(name.value, tags)
        summaries = [await self._summary(access, row) for row in rows]
        description = next(
            (
                str(s.description.facts.get("labels", {}).get(DESCRIPTION_LABEL))
                for s in summaries
                if s.description is not None
                and DESCRIPTION_LABEL in s.description.facts.get("labels", {})
            ),
            None,
        )
        chosen = history_tag or (tags[0] if tags else None)
        history: list[TagMove] = []
        if chosen is not None:
            try:
                history = await self._history.history(viewer, name, Tag.parse(chosen))
            except RegistryError:  # NotFound, a malformed tag
                chosen, history = None, []
        advisories = [
            record
            for record in await self._advisories.visible(viewer)
            if any(
                str(a.get("repository")) == name.value
                for a in record.document.get("affected") or ()
                if isinstance(a, dict)
            )
        ]
        return RepositoryView(
            name=name.value,
            description=description,
            limited=access.tags is not None,
            tags=summaries,
            next_after=page.items[-1] if page.more and page.items else None,
            advisories=advisories,
            history_tag=chosen,
            history=history,
        )

    async def _summary(self, access: RepositoryAccess, row: TagRow) -> TagSummary:
        manifest = parse_manifest(row.content, row.media_type)
        kind = manifest_kind(manifest)
        description = await self._packages.description(row.digest)
        facts = description.facts if description is not None else {}
        if manifest.is_index:
            platforms = [platform_text(d.platform or {}) for d in manifest.manifests]
            size = None
        else:
            platforms = (
                [platform_text(facts["platform"])] if facts.get("platform") else []
            )
            size = (manifest.config.size if manifest.config else 0) + sum(
                d.size for d in manifest.layers
            )
        verification = await self._verifier.verify(access, row.digest)
        return TagSummary(
            tag=row.tag,
            digest=row.digest,
            updated_at=row.updated_at,
            media_type=row.media_type,
            kind=kind,
            platforms=platforms,
            size=size,
            created=facts.get("created"),
            description=description,
            vulnerabilities=await self._vulns.counts(row.digest),
            signed=verification.ok,
            signatures=len(verification.signatures),
            failures=verification.failures,
        )
