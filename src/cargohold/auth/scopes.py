"""Docker token-auth scopes and challenges.

See distribution ``docs/spec/auth/scope.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cargohold.auth.policy import PULL, TagLimit, join_limit

REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"


@dataclass(frozen=True, slots=True)
class Scope:
    """A requested resource scope: ``repository:library/alpine:pull,push``."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


@dataclass(frozen=True, slots=True)
class Access:
    """A granted access entry, as carried in a token's ``access`` claim.

    ``tags`` limits which tags (glob patterns), and the content they reach, the holder
    may use in the repository; ``None`` means no limit. An action whose limit differs
    (starter tags widen only pull; grants give each action its own limit) has its own
    in ``action_tags``, carried in the claim as ``{"action_tags": {"push": [...]}}``.
    """

    type: str
    name: str
    actions: tuple[str, ...]
    tags: TagLimit = None
    action_tags: tuple[tuple[str, TagLimit], ...] = ()

    @classmethod
    def granting(cls, kind: str, name: str, limits: dict[str, TagLimit]) -> Access:
        """The entry for ``limits`` (action -> tag limit), written compactly."""
        base = limits[PULL] if PULL in limits else next(iter(limits.values()), None)
        own = tuple((a, t) for a, t in limits.items() if t != base)
        return cls(kind, name, tuple(limits), base, own)

    def tags_for(self, action: str) -> TagLimit:
        """The tag limit of one of the entry's actions."""
        for own, tags in self.action_tags:
            if own == action:
                return tags
        return self.tags

    def limits(self) -> dict[str, TagLimit]:
        return {a: self.tags_for(a) for a in self.actions}

    def to_claim(self) -> dict[str, Any]:
        claim: dict[str, Any] = {
            "type": self.type,
            "name": self.name,
            "actions": list(self.actions),
        }
        if self.tags is not None:
            claim["tags"] = list(self.tags)
        if self.action_tags:
            claim["action_tags"] = {
                a: None if t is None else list(t) for a, t in self.action_tags
            }
        return claim

    @classmethod
    def from_claim(cls, claim: Any) -> Access | None:
        """Read one ``access`` entry; ``None`` if it is malformed."""
        if not isinstance(claim, dict):
            return None
        kind, name, actions = claim.get("type"), claim.get("name"), claim.get("actions")
        if not isinstance(kind, str) or not isinstance(name, str):
            return None
        if not isinstance(actions, list) or not all(
            isinstance(a, str) for a in actions
        ):
            return None
        tags = claim.get("tags")
        if tags is not None and not _string_list(tags):
            return None
        own = claim.get("action_tags", {})
        if not isinstance(own, dict) or not all(
            t is None or _string_list(t) for t in own.values()
        ):
            return None
        return cls(
            kind,
            name,
            tuple(actions),
            tuple(tags) if tags is not None else None,
            tuple((a, None if t is None else tuple(t)) for a, t in own.items()),
        )


def _string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


def parse_scope(text: str) -> Scope | None:
    """Parse one scope; ``None`` when malformed.

    Such scopes are ignored, not errors.
    """
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    wanted = frozenset(a for a in actions.split(",") if a)
    if not wanted:
        return None
    return Scope(kind, name, wanted)


def parse_scopes(values: list[str]) -> list[Scope]:
    """Parse ``scope`` parameters; each may hold several scopes separated by spaces."""
    scopes = []
    for value in values:
        for part in value.split():
            scope = parse_scope(part)
            if scope is not None:
                scopes.append(scope)
    return scopes


def merge_scopes(scopes: Iterable[Scope]) -> list[Scope]:
    """One scope per resource, with the union of the actions asked for it.

    Clients send ``scope`` more than once (``repository:R:pull`` then
    ``repository:R:pull,push``); every one counts, in whatever order they come.
    """
    merged: dict[tuple[str, str], frozenset[str]] = {}
    for scope in scopes:
        key = (scope.type, scope.name)
        merged[key] = merged.get(key, frozenset()) | scope.actions
    return [Scope(kind, name, actions) for (kind, name), actions in merged.items()]


def merge_access(entries: Iterable[Access]) -> Access | None:
    """One entry from several for the same resource; ``None`` if there are none.

    Actions add up; so do tag limits, action by action, and an entry without a limit
    for an action lifts that action's limit (as grants do in ``auth.policy.decide``).
    """
    entries = list(entries)
    if len(entries) <= 1:
        return entries[0] if entries else None
    limits: dict[str, TagLimit] = {}
    for entry in entries:
        for action in entry.actions:
            join_limit(limits, action, entry.tags_for(action))
    return Access.granting(entries[0].type, entries[0].name, limits)


def repository_scope(name: str, actions: tuple[str, ...]) -> str:
    return f"{REPOSITORY}:{name}:{','.join(actions)}"


def challenge(
    realm: str, service: str, *, scope: str | None = None, error: str | None = None
) -> str:
    """The ``WWW-Authenticate`` value telling a client where to get a token."""
    parts = [f'realm="{realm}"', f'service="{service}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)
