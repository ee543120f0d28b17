"""Who may do what: the pure access decision behind every token.

Rules, in order:

1. An administrator may do everything.
2. Grants (data: organization memberships, per-repository overrides, pull tokens, CI
   identities) give a role on repositories matching a glob: ``puller`` → pull,
   ``pusher`` → pull and push, ``owner`` → pull, push and delete. A grant may limit the
   tags (globs) it covers; grants add up, and one without a limit lifts all limits.
3. **Anyone, anonymous included, may pull the starter tags of a public repository** (and
   the content they reach): that is the only rule that opens anything to the public.

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


@dataclass(frozen=True, slots=True)
class Decision:
    actions: frozenset[str]
    tags: tuple[str, ...] | None  # None: no tag limit

    @property
    def empty(self) -> bool:
        return not self.actions


def decide(
    principal: Principal,
    grants: Iterable[Grant],
    repository: RepositoryPolicy,
    requested: frozenset[str],
) -> Decision:
    """The actions of ``requested`` that ``principal`` may take on ``repository``."""
    if principal.is_admin:
        return Decision(requested & ALL_ACTIONS, None)
    actions: set[str] = set()
    limited: list[str] = []
    unlimited = False
    for grant in grants:
        if not fnmatchcase(repository.name, grant.repository):
            continue
        actions |= ROLE_ACTIONS.get(grant.role, frozenset())
        if grant.tags is None:
            unlimited = True
        else:
            limited.extend(grant.tags)
    if repository.public and PULL in requested:
        actions.add(PULL)
        limited.extend(repository.starter_tags)
    granted = frozenset(actions) & requested
    if not granted:
        return Decision(frozenset(), None)
    return Decision(granted, None if unlimited else tuple(dict.fromkeys(limited)))


def tag_allowed(tag: str, patterns: tuple[str, ...] | None) -> bool:
    """Whether ``tag`` is covered by a decision's tag limit."""
    return patterns is None or any(fnmatchcase(tag, p) for p in patterns)
