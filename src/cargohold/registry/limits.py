"""What a caller may touch in one repository, decided where the content is reached.

The API turns a verified token into a ``RepositoryAccess`` (repository, principal,
granted actions, tag patterns); every service method that reads or changes a
repository's content takes one and asks ``TagLimits`` before touching anything, so no
handler can forget a check. The rules for a caller limited to some tags:

- a tag: it must match the patterns (read, push and delete alike);
- a digest (manifest or blob) to read: it must be *reachable* from the allowed tags
  (the manifests they point at, index children, referrers, the blobs those reference);
- a cosign attachment tag ``sha256-<hex>.sig|.att|.sbom`` to read: readable by whoever
  may read manifest ``sha256:<hex>`` (signatures and attestations follow the image),
  and so is what it reaches;
- a manifest pushed by digest: allowed (index children come before the tagged index);
- a pushed referrer's subject: reachable, or reached by no other tag, so nobody attaches
  signatures or attestations to content outside their tags;
- a digest to delete (manifest or blob): reachable from the allowed tags and from no
  other tag (deleting a manifest removes every tag pointing at it), computed afresh.

Anything refused gets the same answer whether or not it exists: ``401`` with a
challenge for anonymous callers, ``403 DENIED`` for the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cargohold.auth.policy import (
    ALL_ACTIONS,
    DELETE,
    OPEN,
    PULL,
    PUSH,
    Principal,
    TagLimit,
    tag_allowed,
)
from cargohold.auth.scopes import repository_scope
from cargohold.metadata.store import MetadataStore
from cargohold.oci.digest import Digest
from cargohold.oci.errors import BlobUnknown, Denied, RegistryError, Unauthorized
from cargohold.oci.names import RepositoryName
from cargohold.registry.jobs import attached_to

# Seconds a computed tag reach may still grant reads after a retag closed it.
CONTENT_VIEW_TTL = 1.0
# Cache size beyond which the cache is emptied, bounding memory.
MAX_CACHED_VIEWS = 10_000


class LoginRequired(Unauthorized):
    """401: the caller needs a token for ``scope``; the API adds the challenge."""

    def __init__(self, detail: object, *, scope: str, error: str | None = None) -> None:
        super().__init__(detail)
        self.scope = scope
        self.error = error


@dataclass(frozen=True, slots=True)
class RepositoryAccess:
    """What one caller may do in one repository (the domain form of a token entry).

    Each granted action has its own tag limit (``None``: every tag and digest): the
    starter tags of a public repository widen what may be pulled, never what may be
    pushed or deleted.
    """

    repository: RepositoryName
    principal: Principal
    limits: dict[str, TagLimit]  # granted action -> its tag limit

    @classmethod
    def open(cls, repository: RepositoryName) -> RepositoryAccess:
        """Auth off: everyone may do everything, as an administrator would."""
        return cls(repository, OPEN, dict.fromkeys(sorted(ALL_ACTIONS)))

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self.limits)

    @property
    def tags(self) -> TagLimit:
        """The limit on what may be read (pulled)."""
        return self.limits.get(PULL)

    def tags_for(self, action: str) -> TagLimit:
        return self.limits.get(action)

    def refusal(self, what: str, action: str = PULL) -> RegistryError:
        if self.principal.anonymous:
            return LoginRequired(
                f"log in to {action} {what}",
                scope=repository_scope(self.repository.value, _needed(action)),
            )
        return Denied(f"your entitlement does not cover {what}")

    def require(self, action: str) -> RepositoryName:
        """The repository, if ``action`` was granted (the API checked it already)."""
        if action not in self.limits:
            raise LoginRequired(
                f"this token does not allow {action}",
                scope=repository_scope(self.repository.value, _needed(action)),
                error="insufficient_scope",
            )
        return self.repository

    def allows_tag(self, tag: str, action: str = PULL) -> bool:
        return tag_allowed(tag, self.tags_for(action))


def _needed(action: str) -> tuple[str, ...]:
    return (PULL, PUSH) if action == PUSH else (action,)


@dataclass(frozen=True, slots=True)
class ContentView:
    """Manifests and blobs reachable from some tags of a repository."""

    manifests: frozenset[str]
    blobs: frozenset[str]

    def __contains__(self, digest: object) -> bool:
        return digest in self.manifests or digest in self.blobs


class TagLimits:
    """The tag-limit decisions, over the metadata store's reachability query."""

    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta
        self._views: dict[tuple[str, tuple[str, ...]], tuple[ContentView, float]] = {}

    async def content_view(
        self, repository: str, tags: tuple[str, ...], *, fresh: bool = False
    ) -> ContentView:
        """What the tags matching ``tags`` reach.

        Reads may reuse an answer for ``CONTENT_VIEW_TTL`` seconds (per process);
        ``fresh`` computes it now, for decisions that change content.
        """
        key = (repository, tags)
        now = time.monotonic()
        cached = self._views.get(key)
        if not fresh and cached is not None and cached[1] > now:
            return cached[0]
        direct, _ = await self._meta.manifests.reachable(
            repository, lambda tag: tag_allowed(tag, tags)
        )

        def attached(tag: str) -> bool:
            return tag_allowed(tag, tags) or attached_to(tag) in direct

        # A second pass adds the cosign tags of what the first reached; it is needed
        # only when the repository has such tags, which the first cannot tell.
        manifests, blobs = await self._meta.manifests.reachable(repository, attached)
        view = ContentView(manifests, blobs)
        self._views[key] = (view, now + CONTENT_VIEW_TTL)
        if len(self._views) > MAX_CACHED_VIEWS:
            self._views.clear()
        return view

    async def _outside(self, repository: str, tags: tuple[str, ...]) -> ContentView:
        """What the tags *not* matching ``tags`` reach, computed now."""
        manifests, blobs = await self._meta.manifests.reachable(
            repository, lambda tag: not tag_allowed(tag, tags)
        )
        return ContentView(manifests, blobs)

    @staticmethod
    def require_tag(access: RepositoryAccess, tag: str, action: str = PULL) -> None:
        if not access.allows_tag(tag, action):
            raise access.refusal(f"tag {tag!r}", action)

    async def require_readable_tag(self, access: RepositoryAccess, tag: str) -> None:
        """A tag to pull: allowed by the patterns, or a cosign attachment tag of a
        manifest the caller may read."""
        if access.allows_tag(tag):
            return
        subject = attached_to(tag)
        if subject is None or not await self.reaches(access, Digest.parse(subject)):
            raise access.refusal(f"tag {tag!r}")

    async def visible_tags(
        self, access: RepositoryAccess, tags: list[str]
    ) -> list[str]:
        """The tags of ``tags`` the caller may pull (cosign tags of what it reads)."""
        if access.tags is None:
            return tags
        view = await self.content_view(access.repository.value, access.tags)
        return [
            t for t in tags if access.allows_tag(t) or attached_to(t) in view.manifests
        ]

    async def reaches(self, access: RepositoryAccess, digest: Digest) -> bool:
        """Whether the caller may read ``digest`` (a manifest or a blob).

        A cached view may say yes; a no is checked afresh, so what was just pushed
        under an allowed tag (by this process or another) can be pulled at once.
        """
        if access.tags is None:
            return True
        repository, wanted = access.repository.value, str(digest)
        if wanted in await self.content_view(repository, access.tags):
            return True
        return wanted in await self.content_view(repository, access.tags, fresh=True)

    async def require_manifest(self, access: RepositoryAccess, digest: Digest) -> None:
        if not await self.reaches(access, digest):
            raise access.refusal("this digest")

    async def require_blob(self, access: RepositoryAccess, digest: Digest) -> None:
        if await self.reaches(access, digest):
            return
        if PUSH in access.actions:
            # A pusher checks whether a blob exists before uploading it: "absent" lets
            # the push go on (the upload proves possession) and tells nothing.
            raise BlobUnknown(str(digest))
        raise access.refusal("this blob")

    async def require_deletable(self, access: RepositoryAccess, digest: Digest) -> None:
        """Only content the caller's delete tags reach and no other tag does may go."""
        split = await self._split(access, DELETE)
        if split is not None:
            mine, others = split
            if str(digest) not in mine or str(digest) in others:
                raise access.refusal("this digest", DELETE)

    async def require_subject(self, access: RepositoryAccess, subject: Digest) -> None:
        """A referrer's subject must not be content only other tags reach.

        Layers and index children are not checked this way: images share base layers
        across tags, and a push that re-uploads a layer only a production tag reaches
        must still work (the upload proves the caller holds the bytes).
        """
        split = await self._split(access, PUSH)
        if split is not None:
            mine, others = split
            if str(subject) not in mine and str(subject) in others:
                raise access.refusal("this subject", PUSH)

    async def _split(
        self, access: RepositoryAccess, action: str
    ) -> tuple[ContentView, ContentView] | None:
        """What the tags ``action`` covers reach, and what the others reach, now.

        ``None`` when ``action`` has no tag limit. For decisions that change content,
        so never from the read cache.
        """
        tags = access.tags_for(action)
        if tags is None:
            return None
        repository = access.repository.value
        mine = await self.content_view(repository, tags, fresh=True)
        return mine, await self._outside(repository, tags)
