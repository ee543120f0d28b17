"""The access decision, as a table (auth/policy.py is pure)."""

from __future__ import annotations

import pytest

from cargohold.auth.policy import (
    ANONYMOUS,
    Decision,
    Grant,
    Principal,
    RepositoryPolicy,
    decide,
    tag_allowed,
)

ALICE = Principal("user", "user:alice")
ADMIN = Principal("user", "user:root", is_admin=True)
PUBLIC = RepositoryPolicy(
    "acme/python", public=True, starter_tags=("latest", "latest-dev")
)
PRIVATE = RepositoryPolicy("acme/python", public=False, starter_tags=("latest",))
PULL, PUSH, DELETE = (
    frozenset({"pull"}),
    frozenset({"pull", "push"}),
    frozenset({"delete"}),
)
EVERYTHING = frozenset({"pull", "push", "delete"})


def _same(actions: frozenset[str], tags: tuple[str, ...] | None) -> Decision:
    """A decision giving every action in ``actions`` the same tag limit."""
    return Decision(dict.fromkeys(sorted(actions), tags))


@pytest.mark.parametrize(
    ("principal", "grants", "repo", "requested", "expected"),
    [
        # administrators: everything asked, no tag limit
        (ADMIN, [], PRIVATE, EVERYTHING, _same(EVERYTHING, None)),
        (ADMIN, [], PRIVATE, frozenset({"pull", "fly"}), _same(PULL, None)),
        # anonymous: starter tags of public repositories only
        (ANONYMOUS, [], PUBLIC, PULL, _same(PULL, ("latest", "latest-dev"))),
        (ANONYMOUS, [], PUBLIC, PUSH, _same(PULL, ("latest", "latest-dev"))),
        (ANONYMOUS, [], PRIVATE, PULL, _same(frozenset(), None)),
        (ANONYMOUS, [], PUBLIC, DELETE, _same(frozenset(), None)),
        # roles
        (ALICE, [Grant("acme/*", "puller")], PRIVATE, PUSH, _same(PULL, None)),
        (ALICE, [Grant("acme/*", "pusher")], PRIVATE, EVERYTHING, _same(PUSH, None)),
        (
            ALICE,
            [Grant("acme/*", "owner")],
            PRIVATE,
            EVERYTHING,
            _same(EVERYTHING, None),
        ),
        (
            ALICE,
            [Grant("acme/*", "wizard")],
            PRIVATE,
            PULL,
            _same(frozenset(), None),
        ),
        # grants match repository patterns
        (
            ALICE,
            [Grant("other/*", "owner")],
            PRIVATE,
            PULL,
            _same(frozenset(), None),
        ),
        (ALICE, [Grant("acme/python", "puller")], PRIVATE, PULL, _same(PULL, None)),
        (ALICE, [Grant("acme/py*", "puller")], PRIVATE, PULL, _same(PULL, None)),
        # tag limits add up; an unlimited grant lifts them
        (
            ALICE,
            [Grant("acme/*", "puller", ("3.12*",))],
            PRIVATE,
            PULL,
            _same(PULL, ("3.12*",)),
        ),
        (
            ALICE,
            [
                Grant("acme/*", "puller", ("3.12*",)),
                Grant("acme/*", "puller", ("3.13*",)),
            ],
            PRIVATE,
            PULL,
            _same(PULL, ("3.12*", "3.13*")),
        ),
        (
            ALICE,
            [Grant("acme/*", "puller", ("3.12*",)), Grant("acme/*", "puller")],
            PRIVATE,
            PULL,
            _same(PULL, None),
        ),
        # a limited entitlement on a public repository adds the starter tags
        (
            ALICE,
            [Grant("acme/*", "puller", ("3.12*",))],
            PUBLIC,
            PULL,
            _same(PULL, ("3.12*", "latest", "latest-dev")),
        ),
        (ALICE, [Grant("acme/*", "puller")], PUBLIC, PULL, _same(PULL, None)),
        # nothing asked, nothing given
        (
            ALICE,
            [Grant("acme/*", "owner")],
            PRIVATE,
            frozenset(),
            _same(frozenset(), None),
        ),
    ],
)
def test_decide(
    principal: Principal,
    grants: list[Grant],
    repo: RepositoryPolicy,
    requested: frozenset[str],
    expected: Decision,
) -> None:
    assert decide(principal, grants, repo, requested) == expected


def test_decision_empty() -> None:
    assert Decision({}).empty
    assert not _same(PULL, None).empty


@pytest.mark.parametrize(
    ("grants", "repo", "requested", "expected"),
    [
        # An unlimited puller grant lifts the pull limit only, not the owner's.
        (
            [Grant("acme/*", "puller"), Grant("acme/python", "owner", ("dev-*",))],
            PRIVATE,
            EVERYTHING,
            {"delete": ("dev-*",), "pull": None, "push": ("dev-*",)},
        ),
        # Starter tags widen what may be pulled, never what may be pushed or deleted.
        (
            [Grant("acme/python", "owner", ("dev-*",))],
            PUBLIC,
            EVERYTHING,
            {
                "delete": ("dev-*",),
                "pull": ("dev-*", "latest", "latest-dev"),
                "push": ("dev-*",),
            },
        ),
        # A pusher grant on every tag and an owner grant on some: delete stays limited.
        (
            [Grant("acme/*", "pusher"), Grant("acme/python", "owner", ("dev-*",))],
            PUBLIC,
            EVERYTHING,
            {"delete": ("dev-*",), "pull": None, "push": None},
        ),
    ],
)
def test_each_action_has_its_own_limit(
    grants: list[Grant],
    repo: RepositoryPolicy,
    requested: frozenset[str],
    expected: dict[str, tuple[str, ...] | None],
) -> None:
    assert decide(ALICE, grants, repo, requested).limits == expected


@pytest.mark.parametrize(
    ("tag", "patterns", "allowed"),
    [
        ("latest", None, True),
        ("latest", ("latest",), True),
        ("latest-dev", ("latest",), False),
        ("3.12.1", ("3.12*",), True),
        ("3.1", ("3.12*",), False),
        ("anything", (), False),
    ],
)
def test_tag_allowed(tag: str, patterns: tuple[str, ...] | None, allowed: bool) -> None:
    assert tag_allowed(tag, patterns) is allowed


def test_principal_kinds() -> None:
    assert ANONYMOUS.anonymous
    assert not ALICE.anonymous
