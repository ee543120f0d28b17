"""The advisory document's rules, contact addresses and ``Warning`` values (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from cargohold.metadata.advisories import Coverage
from cargohold.registry.admin import InvalidRequest, check_email
from cargohold.registry.advisory_document import (
    MAX_WARNING_BYTES,
    FixedIn,
    merge,
    parse_document,
    parse_fixed_in,
    warning_value,
    within_limit,
)

DIGEST = "sha256:" + "a" * 64


def document(**changes: object) -> dict[str, Any]:
    return {
        "id": "CH-1",
        "title": "t",
        "severity": "low",
        "state": "upcoming",
        "affected": [{"repository": "acme/app", "tags": ["v1*"]}],
    } | changes


def test_a_minimal_document_gets_its_defaults() -> None:
    parsed = parse_document(document())
    assert parsed.to_json() == {
        "id": "CH-1",
        "title": "t",
        "severity": "low",
        "state": "upcoming",
        "description": "",
        "affected": [{"repository": "acme/app", "digests": [], "tags": ["v1*"]}],
        "fixed_in": None,
        "aliases": [],
        "url": None,
    }
    assert parsed.affects("acme/app", "v1.2")
    assert not parsed.affects("acme/app", "v2")
    assert not parsed.affects("acme/other", "v1")


@pytest.mark.parametrize(
    "changes",
    [
        {"extra": 1},
        {"id": ""},
        {"id": "a" * 65},
        {"title": "x" * 201},
        {"title": 5},
        {"severity": None},
        {"description": ["x"]},
        {"affected": "acme/app"},
        {"affected": [{"repository": "acme/app", "tags": ["v1"], "x": 1}]},
        {"affected": [{"repository": 5, "tags": ["v1"]}]},
        {"affected": [{"repository": "acme/app", "tags": "v1"}]},
        {"affected": [{"repository": "acme/app", "digests": ["md5:abc"]}]},
        {"affected": [{"repository": "acme/app", "tags": ["v1"]}] * 101},
        {"fixed_in": ""},
        {"fixed_in": "Bad Repo:tag"},
        {"fixed_in": "acme/app@v2"},
        {"fixed_in": "@" + DIGEST},
        {"aliases": ["bad alias"]},
        {"url": "ftp://example.org"},
    ],
)
def test_bad_documents_are_invalid_requests(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        parse_document(document(**changes))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("v2", FixedIn(None, "v2", None)),
        ("acme/app:v2", FixedIn("acme/app", "v2", None)),
        (DIGEST, FixedIn(None, None, DIGEST)),
        (f"acme/app@{DIGEST}", FixedIn("acme/app", None, DIGEST)),
    ],
)
def test_fixed_in_forms(text: str, parsed: FixedIn) -> None:
    assert parse_fixed_in(text) == parsed
    coverage = Coverage.of(document(fixed_in=text))
    assert (
        coverage.fixed_repository,
        coverage.fixed_tag,
        coverage.fixed_digest,
    ) == (parsed.repository, parsed.tag, parsed.digest)


def test_merge_changes_only_what_is_given() -> None:
    current = parse_document(document(aliases=["CVE-1"]))
    merged = merge(current, {"state": "resolved"})
    assert merged.state == "resolved"
    assert merged.aliases == ("CVE-1",)
    bad_changes: list[object] = [{}, {"id": "CH-2"}, {"nope": 1}, [], {"severity": "x"}]
    for bad in bad_changes:
        with pytest.raises(InvalidRequest):
            merge(current, bad)


@pytest.mark.parametrize(
    "address", ["a@example.org", "first.last+tag@sub.example.co", "x_y@a-b.example"]
)
def test_good_addresses(address: str) -> None:
    assert check_email(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "plain",
        "@example.org",
        "a@",
        "a@localhost",
        "a b@example.org",
        "A <a@example.org>",
        "a@example.org, b@example.org",
        "a..b@example.org",
        ".a@example.org",
        "a.@example.org",
        "a@-x.example",
        "a@example.org\n",
        "é@example.org",
        "a" * 65 + "@example.org",
        7,
    ],
)
def test_garbage_addresses_are_refused(address: object) -> None:
    with pytest.raises(InvalidRequest):
        check_email(address)


def test_no_address_clears() -> None:
    assert check_email(None) is None
    assert check_email("") is None


def test_warning_values_follow_the_spec() -> None:
    assert warning_value("CH-1", "libfoo", "v2") == '299 - "CH-1: libfoo; fixed in v2"'
    assert warning_value("CH-1", "libfoo", None) == '299 - "CH-1: libfoo"'
    assert (
        warning_value("CH-1", 'a "b" \\ c\r\nd é', None)
        == '299 - "CH-1: a \\"b\\" \\\\ c??d ?"'
    )


def test_warnings_stop_at_4096_bytes() -> None:
    values = [warning_value(f"CH-{i}", "x" * 1000, None) for i in range(6)]
    kept = within_limit(values)
    assert kept == values[:4]
    assert sum(len(v) for v in kept) <= MAX_WARNING_BYTES
    assert within_limit(["y" * 5000, "short"]) == ["short"]


def test_a_draft_may_be_published_but_never_drafted_again() -> None:
    draft = parse_document(document(state="draft"))
    assert draft.state == "draft"
    assert merge(draft, {"title": "still a draft"}).state == "draft"
    published = merge(draft, {"state": "current"})
    assert published.state == "current"
    with pytest.raises(InvalidRequest, match="cannot become a draft again"):
        merge(published, {"state": "draft"})
