"""The tag-limit computation, end to end: grants and repository settings in the account
store → ``auth.policy.decide`` → the token's ``Access`` (``AccessService.grant``) → the
content that access reaches (``AccessService.content_view``), on every database.

One table: grant shape (role, tag globs, pull token, CI identity, public starter tags,
administrator, anonymous) → actions and tag limit granted → manifests reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from cargohold.auth.policy import ANONYMOUS, Principal
from cargohold.auth.scopes import REPOSITORY, Access, Scope
from cargohold.metadata.accounts import RepositorySettingsRecord
from cargohold.registry.access import AccessService
from cargohold.registry.limits import TagLimits
from cargohold.settings import AuthSettings

from .test_manifest_reach import put_index, put_referrer
from .test_metadata_store import push_image

if TYPE_CHECKING:
    from cargohold.metadata.accounts import AccountStore
    from cargohold.metadata.store import MetadataStore

REPO = "acme/app"
ALL = frozenset({"pull", "push", "delete"})
ALICE = Principal("user", "user:alice")
TOKEN = Principal("token", "token:0123456789abcdef0123456789abcdef")
CI = Principal("oidc", "oidc:ci")
ADMIN = Principal("user", "user:root", is_admin=True)


@dataclass(frozen=True)
class Case:
    principal: Principal
    grants: list[tuple[str, str, tuple[str, ...] | None]]  # repository, role, tags
    requested: frozenset[str]
    actions: tuple[str, ...]  # granted; () when nothing
    tags: tuple[str, ...] | None  # the pull limit
    reached: set[str] = field(default_factory=set)  # tags whose content is reached
    visibility: str = "private"
    starter_tags: tuple[str, ...] | None = None
    # actions whose limit differs from the pull limit
    action_tags: tuple[tuple[str, tuple[str, ...] | None], ...] = ()


CASES = {
    "owner, unlimited": Case(
        ALICE, [("acme/*", "owner", None)], ALL, ("delete", "pull", "push"), None
    ),
    "owner limited to dev-*": Case(
        ALICE, [("acme/*", "owner", ("dev-*",))], ALL,
        ("delete", "pull", "push"), ("dev-*",), {"dev-1"},
    ),
    "limits add up across grants": Case(
        ALICE, [("acme/app", "puller", ("v*",)), ("acme/*", "pusher", ("dev-*",))],
        ALL, ("pull", "push"), ("dev-*", "v*"), {"v1.0", "dev-1"},
        action_tags=(("push", ("dev-*",)),),
    ),
    "an unlimited puller grant leaves the owner's write limit": Case(
        ALICE, [("acme/*", "puller", None), ("acme/app", "owner", ("dev-*",))],
        ALL, ("delete", "pull", "push"), None,
        action_tags=(("delete", ("dev-*",)), ("push", ("dev-*",))),
    ),
    "an unlimited grant lifts the limits": Case(
        ALICE, [("acme/*", "puller", ("v*",)), ("acme/app", "puller", None)],
        frozenset({"pull"}), ("pull",), None,
    ),
    "an empty limit reaches nothing": Case(
        ALICE, [("acme/*", "puller", ())], frozenset({"pull"}), ("pull",), (), set()
    ),
    "puller asking to push gets pull": Case(
        ALICE, [("acme/*", "puller", ("prod-*",))], frozenset({"pull", "push"}),
        ("pull",), ("prod-*",), {"prod-1"},
    ),
    "grant on another repository": Case(
        ALICE, [("acme/other", "owner", None)], ALL, (), None
    ),
    "pull token limited to v*": Case(
        TOKEN, [("acme/*", "puller", ("v*",))], frozenset({"pull"}),
        ("pull",), ("v*",), {"v1.0"},
    ),
    "CI identity, pusher": Case(
        CI, [("acme/app", "pusher", None)], ALL, ("pull", "push"), None
    ),
    "administrator": Case(ADMIN, [], ALL, ("delete", "pull", "push"), None),
    "anonymous, private": Case(ANONYMOUS, [], frozenset({"pull"}), (), None),
    "anonymous, public: the default starter tags": Case(
        ANONYMOUS, [], ALL, ("pull",), ("latest", "latest-dev"), {"latest"},
        visibility="public",
    ),
    "limited grant on a public repository adds its starter tags": Case(
        ALICE, [("acme/*", "puller", ("prod-*",))], frozenset({"pull"}),
        ("pull",), ("prod-*", "stable"), {"prod-1", "stable"},
        visibility="public", starter_tags=("stable",),
    ),
    "starter tags widen pull, not push or delete": Case(
        ALICE, [("acme/*", "owner", ("dev-*",))], ALL,
        ("delete", "pull", "push"), ("dev-*", "stable"), {"dev-1", "stable"},
        visibility="public", starter_tags=("stable",),
        action_tags=(("delete", ("dev-*",)), ("push", ("dev-*",))),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class World:
    accounts: AccountStore
    meta: MetadataStore
    access: AccessService
    limits: TagLimits
    by_tag: dict[str, set[str]]  # tag -> the manifests its content holds


async def _content(meta: MetadataStore) -> dict[str, set[str]]:
    """Tags of ``REPO`` and, for each, every manifest it reaches."""
    by_tag: dict[str, set[str]] = {}
    for tag in ("latest", "dev-1", "stable"):
        by_tag[tag] = {
            (await push_image(meta, tag.encode(), repository=REPO, tag=tag)).digest
        }
    signed = await push_image(meta, b"prod-1", repository=REPO, tag="prod-1")
    signature = await put_referrer(meta, b"sig-of-prod-1", signed)
    by_tag["prod-1"] = {signed.digest, signature.digest}
    child = await push_image(meta, b"amd64", repository=REPO)
    index = await put_index(meta, b"index-v1.0", [child], tag="v1.0", repository=REPO)
    by_tag["v1.0"] = {index.digest, child.digest}
    return by_tag


@pytest.fixture
async def world(both_stores: tuple[MetadataStore, AccountStore]) -> World:
    meta, accounts = both_stores
    access = AccessService(accounts, AuthSettings())
    return World(accounts, meta, access, TagLimits(meta), await _content(meta))


@pytest.mark.parametrize("name", list(CASES))
async def test_tag_limits(world: World, name: str) -> None:
    case = CASES[name]
    for repository, role, tags in case.grants:
        await world.accounts.grants.add(
            case.principal.subject, "acme", repository, role, tags
        )
    await world.accounts.repository_settings.put(
        RepositorySettingsRecord(REPO, case.visibility, case.starter_tags, 0.0)
    )

    granted = await world.access.grant(
        case.principal, [Scope(REPOSITORY, REPO, case.requested)]
    )

    if not case.actions:
        assert granted == []
        return
    assert granted == [
        Access(REPOSITORY, REPO, case.actions, case.tags, case.action_tags)
    ]
    if case.tags is None:
        return  # no limit: no view is computed, everything is reachable
    view = await world.limits.content_view(REPO, case.tags)
    manifests, blobs = view.manifests, view.blobs
    expected = set().union(*(world.by_tag[tag] for tag in case.reached))
    assert manifests == expected
    outside = set().union(*world.by_tag.values()) - expected
    assert not manifests & outside
    assert bool(blobs) == bool(expected)
