"""Who may do what: the pure access decision behind every token.

Rules, in order:

1. An administrator may do everything.
2. Grants (data: organization memberships, per-repository overrides, pull tokens, CI
   identities) give a role on repositories matching a glob: ``puller`` → pull,
   ``pusher`` → pull and push, ``owner`` → pull, push and delete. A grant may limit the
   tags (globs) it covers. Grants add up action by action: the tag patterns of every
   grant giving an action join, and one giving it without a limit lifts that action's
   limit (a ``puller`` grant on every tag leaves an ``owner`` grant's limit on push and
   delete as it is).
3. **Anyone, anonymous included, may pull the starter tags of a public repository** (and
   the content they reach): that is the only rule that opens anything to the public.
   Starter tags widen only the pull limit, never what may be pushed or deleted.

Nothing else is allowed. A repository that does not exist is decided exactly like one
that does, so a decision never reveals whether a private repository exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

PULL, PUSH, DELETE = "pull", "push", "delete"
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "puller": frozenset({PULL}),
    "pusher": frozenset({PULL, PUSH}),
    "owner": frozenset({PULL, PUSH, DELETE}),
}
ROLES = tuple(ROLE_ACTIONS)
ALL_ACTIONS = frozenset({PULL, PUSH, DELETE})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated (or anonymous) caller: ``kind`` and a stable ``subject``."""

    kind: str  # "anonymous" | "user" | "token" | "oidc" | "open"
    subject: str  # "anonymous", "user:alice", "token:<id>", "oidc:<identity>", "open"
    is_admin: bool = False

    @property
    def anonymous(self) -> bool:
        return self.kind == "anonymous"


ANONYMOUS = Principal("anonymous", "anonymous")
# Every caller when auth is off: nothing is checked, so each may do what an admin may.
OPEN = Principal("open", "open", is_admin=True)


@dataclass(frozen=True, slots=True)
class Grant:
    repository: str  # glob over full repository names, e.g. "acme/*"
    role: str
    tags: tuple[str, ...] | None = None  # None: every tag


@dataclass(frozen=True, slots=True)
class RepositoryPolicy:
    name: str
    public: bool
    starter_tags: tuple[str, ...]


TagLimit = tuple[str, ...] | None  # tag globs; None: no limit


@dataclass(frozen=True, slots=True)
class Decision:
    """The actions granted, each with its own tag limit.

    Limits are per action because they come from different grants: a ``puller`` grant
    on every tag must not lift the limit of an ``owner`` grant on ``dev-*``, and the
    starter tags of a public repository widen only what may be *pulled*.
    """

    limits: dict[str, TagLimit]  # action -> its tag limit

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self.limits)

    @property
    def empty(self) -> bool:
        return not self.limits


def join_limit(limits: dict[str, TagLimit], action: str, tags: TagLimit) -> None:
    """Grants add up: patterns join, and a grant without a limit lifts it."""
    if action in limits and limits[action] is None:
        return
    if tags is None:
        limits[action] = None
        return
    limits[action] = tuple(sorted({*(limits.get(action) or ()), *tags}))


def decide(
    principal: Principal,
    grants: Iterable[Grant],
    repository: RepositoryPolicy,
    requested: frozenset[str],
) -> Decision:
    """The actions of ``requested`` that ``principal`` may take on ``repository``."""
    if principal.is_admin:
        return Decision(dict.fromkeys(sorted(requested & ALL_ACTIONS)))
    limits: dict[str, TagLimit] = {}
    for grant in grants:
        if not fnmatchcase(repository.name, grant.repository):
            continue
        for action in sorted(ROLE_ACTIONS.get(grant.role, frozenset())):
            join_limit(limits, action, grant.tags)
    if repository.public and PULL in requested:
        join_limit(limits, PULL, repository.starter_tags)
    return Decision({a: limits[a] for a in sorted(limits) if a in requested})


def tag_allowed(tag: str, patterns: tuple[str, ...] | None) -> bool:
    """Whether ``tag`` is covered by a decision's tag limit."""
    return patterns is None or any(fnmatchcase(tag, p) for p in patterns)
