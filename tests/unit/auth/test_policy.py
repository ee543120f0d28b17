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


@pytest.mark.parametrize(
    ("principal", "grants", "repo", "requested", "expected"),
    [
        # administrators: everything asked, no tag limit
        (ADMIN, [], PRIVATE, EVERYTHING, Decision(EVERYTHING, None)),
        (ADMIN, [], PRIVATE, frozenset({"pull", "fly"}), Decision(PULL, None)),
        # anonymous: starter tags of public repositories only
        (ANONYMOUS, [], PUBLIC, PULL, Decision(PULL, ("latest", "latest-dev"))),
        (ANONYMOUS, [], PUBLIC, PUSH, Decision(PULL, ("latest", "latest-dev"))),
        (ANONYMOUS, [], PRIVATE, PULL, Decision(frozenset(), None)),
        (ANONYMOUS, [], PUBLIC, DELETE, Decision(frozenset(), None)),
        # roles
        (ALICE, [Grant("acme/*", "puller")], PRIVATE, PUSH, Decision(PULL, None)),
        (ALICE, [Grant("acme/*", "pusher")], PRIVATE, EVERYTHING, Decision(PUSH, None)),
        (
            ALICE,
            [Grant("acme/*", "owner")],
            PRIVATE,
            EVERYTHING,
            Decision(EVERYTHING, None),
        ),
        (
            ALICE,
            [Grant("acme/*", "wizard")],
            PRIVATE,
            PULL,
            Decision(frozenset(), None),
        ),
        # grants match repository patterns
        (
            ALICE,
            [Grant("other/*", "owner")],
            PRIVATE,
            PULL,
            Decision(frozenset(), None),
        ),
        (ALICE, [Grant("acme/python", "puller")], PRIVATE, PULL, Decision(PULL, None)),
        (ALICE, [Grant("acme/py*", "puller")], PRIVATE, PULL, Decision(PULL, None)),
        # tag limits add up; an unlimited grant lifts them
        (
            ALICE,
            [Grant("acme/*", "puller", ("3.12*",))],
            PRIVATE,
            PULL,
            Decision(PULL, ("3.12*",)),
        ),
        (
            ALICE,
            [
                Grant("acme/*", "puller", ("3.12*",)),
                Grant("acme/*", "puller", ("3.13*",)),
            ],
            PRIVATE,
            PULL,
            Decision(PULL, ("3.12*", "3.13*")),
        ),
        (
            ALICE,
            [Grant("acme/*", "puller", ("3.12*",)), Grant("acme/*", "puller")],
            PRIVATE,
            PULL,
            Decision(PULL, None),
        ),
        # a limited entitlement on a public repository adds the starter tags
        (
            ALICE,
            [Grant("acme/*", "puller", ("3.12*",))],
            PUBLIC,
            PULL,
            Decision(PULL, ("3.12*", "latest", "latest-dev")),
        ),
        (ALICE, [Grant("acme/*", "puller")], PUBLIC, PULL, Decision(PULL, None)),
        # nothing asked, nothing given
        (
            ALICE,
            [Grant("acme/*", "owner")],
            PRIVATE,
            frozenset(),
            Decision(frozenset(), None),
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
    assert Decision(frozenset(), None).empty
    assert not Decision(PULL, None).empty


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
