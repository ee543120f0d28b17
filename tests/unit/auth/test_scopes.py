"""Scopes, access claims and challenges (auth/scopes.py is pure)."""

from __future__ import annotations

import pytest

from cargohold.auth.scopes import (
    Access,
    Scope,
    challenge,
    merge_access,
    merge_scopes,
    parse_scope,
    parse_scopes,
    repository_scope,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "repository:acme/app:pull",
            Scope("repository", "acme/app", frozenset({"pull"})),
        ),
        (
            "repository:acme/app:pull,push",
            Scope("repository", "acme/app", frozenset({"pull", "push"})),
        ),
        ("registry:catalog:*", Scope("registry", "catalog", frozenset({"*"}))),
        # a port-like colon: the name is everything between the first and last colon
        (
            "repository:host:5000/app:pull",
            Scope("repository", "host:5000/app", frozenset({"pull"})),
        ),
        (
            "repository:acme/app:pull,,push",
            Scope("repository", "acme/app", frozenset({"pull", "push"})),
        ),
        ("repository:acme/app:", None),
        ("repository:acme/app", None),
        ("repository", None),
        (":acme/app:pull", None),
        ("repository::pull", None),
        ("", None),
    ],
)
def test_parse_scope(text: str, expected: Scope | None) -> None:
    assert parse_scope(text) == expected


def test_parse_scopes_splits_on_spaces_and_drops_garbage() -> None:
    scopes = parse_scopes(["repository:a:pull registry:catalog:*", "junk", ""])
    assert [str(s) for s in scopes] == ["repository:a:pull", "registry:catalog:*"]


def test_access_claims_round_trip() -> None:
    limited = Access("repository", "a/b", ("pull",), ("latest",))
    assert limited.to_claim() == {
        "type": "repository",
        "name": "a/b",
        "actions": ["pull"],
        "tags": ["latest"],
    }
    assert Access.from_claim(limited.to_claim()) == limited
    unlimited = Access("repository", "a/b", ("pull", "push"))
    assert "tags" not in unlimited.to_claim()
    assert Access.from_claim(unlimited.to_claim()) == unlimited


@pytest.mark.parametrize(
    "claim",
    [
        None,
        "repository:a:pull",
        {"type": 1, "name": "a", "actions": ["pull"]},
        {"type": "repository", "name": None, "actions": ["pull"]},
        {"type": "repository", "name": "a", "actions": "pull"},
        {"type": "repository", "name": "a", "actions": [1]},
        {"type": "repository", "name": "a", "actions": ["pull"], "tags": "latest"},
        {"type": "repository", "name": "a", "actions": ["pull"], "tags": [1]},
    ],
)
def test_malformed_claims_are_ignored(claim: object) -> None:
    assert Access.from_claim(claim) is None


def test_challenge() -> None:
    assert (
        challenge("https://r/token", "r")
        == 'Bearer realm="https://r/token",service="r"'
    )
    assert challenge(
        "https://r/token",
        "r",
        scope=repository_scope("a/b", ("pull", "push")),
        error="insufficient_scope",
    ) == (
        'Bearer realm="https://r/token",service="r",'
        'scope="repository:a/b:pull,push",error="insufficient_scope"'
    )


PULL_ONLY = "repository:acme/app:pull"
PULL_PUSH = "repository:acme/app:pull,push"
PUSH_ONLY = "repository:acme/app:push"


@pytest.mark.parametrize(
    "values",
    [
        [PULL_ONLY, PULL_PUSH],
        [PULL_PUSH, PULL_ONLY],
        [PUSH_ONLY, PULL_ONLY],
        [PULL_ONLY, PUSH_ONLY],
        [f"{PULL_ONLY} {PUSH_ONLY}"],
        [PUSH_ONLY, f"{PULL_ONLY} {PULL_ONLY}"],
    ],
)
def test_repeated_scopes_merge_into_one_per_resource(values: list[str]) -> None:
    merged = merge_scopes(parse_scopes(values))
    assert merged == [Scope("repository", "acme/app", frozenset({"pull", "push"}))]


def test_merge_keeps_resources_apart_and_in_order() -> None:
    merged = merge_scopes(
        parse_scopes(
            [
                "registry:catalog:*",
                "repository:b:pull",
                "registry:catalog:*",
                "repository:a:push repository:b:delete",
            ]
        )
    )
    assert merged == [
        Scope("registry", "catalog", frozenset({"*"})),
        Scope("repository", "b", frozenset({"pull", "delete"})),
        Scope("repository", "a", frozenset({"push"})),
    ]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([], None),
        (
            [Access("repository", "r", ("pull",), ("dev-*",))],
            Access("repository", "r", ("pull",), ("dev-*",)),
        ),
        (
            [
                Access("repository", "r", ("pull",), ("dev-*",)),
                Access("repository", "r", ("pull", "push"), ("rc-*", "dev-*")),
            ],
            Access("repository", "r", ("pull", "push"), ("dev-*", "rc-*")),
        ),
        # an entry without a tag limit lifts that action's limit, in any order, and
        # only that action's
        (
            [
                Access("repository", "r", ("pull",), ("dev-*",)),
                Access("repository", "r", ("pull", "push"), None),
            ],
            Access("repository", "r", ("pull", "push"), None),
        ),
        (
            [
                Access("repository", "r", ("pull",), ("dev-*",)),
                Access("repository", "r", ("push",), None),
            ],
            Access("repository", "r", ("pull", "push"), ("dev-*",), (("push", None),)),
        ),
        (
            [
                Access("repository", "r", ("push",), None),
                Access("repository", "r", ("pull",), ("dev-*",)),
            ],
            Access("repository", "r", ("push", "pull"), ("dev-*",), (("push", None),)),
        ),
    ],
)
def test_merge_access(entries: list[Access], expected: Access | None) -> None:
    assert merge_access(entries) == expected


def test_an_action_with_its_own_limit_round_trips_through_the_claim() -> None:
    entry = Access.granting(
        "repository",
        "r",
        {"delete": ("dev-*",), "pull": ("dev-*", "latest"), "push": ("dev-*",)},
    )
    assert entry.tags == ("dev-*", "latest")
    assert entry.tags_for("push") == ("dev-*",)
    assert entry.tags_for("delete") == ("dev-*",)
    claim = entry.to_claim()
    assert claim["action_tags"] == {"delete": ["dev-*"], "push": ["dev-*"]}
    assert Access.from_claim(claim) == entry


@pytest.mark.parametrize("action_tags", [[], "push", {"push": "dev-*"}, {"push": [1]}])
def test_a_malformed_action_tags_claim_is_refused(action_tags: object) -> None:
    claim = {"type": "repository", "name": "r", "actions": ["push"]}
    assert Access.from_claim(claim | {"action_tags": action_tags}) is None


def test_entries_granting_nothing_merge_into_an_entry_granting_nothing() -> None:
    empty = Access("repository", "r", ())
    assert merge_access([empty, empty]) == empty
