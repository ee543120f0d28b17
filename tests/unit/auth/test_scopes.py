"""Scopes, access claims and challenges (auth/scopes.py is pure)."""

from __future__ import annotations

import pytest

from cargohold.auth.scopes import (
    Access,
    Scope,
    challenge,
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
