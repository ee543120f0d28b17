"""OSV documents: the schema's rules, severity and version matching (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from cargohold.metadata.vulns import ImagePackage, StoredVulnerability
from cargohold.registry.advisory_document import parse_document
from cargohold.registry.osv import (
    AffectedPackage,
    Event,
    OsvInvalid,
    Range,
    affects,
    package_key,
    parse_osv,
    score_severity,
)
from cargohold.registry.vulns import draft_document, draft_id, match_packages

CRITICAL_V3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
MEDIUM_V3 = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"
HIGH_V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"


def osv(**fields: object) -> dict[str, Any]:
    return {"id": "GHSA-aaaa-bbbb-cccc", "modified": "2026-01-02T03:04:05Z", **fields}


def affected_entry(**fields: object) -> dict[str, Any]:
    return {
        "package": {"ecosystem": "PyPI", "name": "requests"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        **fields,
    }


def test_a_minimal_document_is_valid() -> None:
    entry = parse_osv(osv())
    assert entry.id == "GHSA-aaaa-bbbb-cccc"
    assert entry.modified == 1_767_323_045.0
    assert entry.severity == "unknown"
    assert entry.affected == ()
    assert not entry.withdrawn


def test_a_full_document_is_read() -> None:
    entry = parse_osv(
        osv(
            schema_version="1.6.0",
            published="2025-12-01T00:00:00.123Z",
            aliases=["CVE-2025-0001"],
            summary="bad thing",
            details="long text",
            severity=[{"type": "CVSS_V3", "score": MEDIUM_V3}],
            affected=[
                affected_entry(
                    package={
                        "ecosystem": "Debian:12",
                        "name": "OpenSSL",
                        "purl": "pkg:deb/debian/openssl",
                    },
                    versions=["3.0.1-1"],
                    ecosystem_specific={"urgency": "high"},
                ),
                {
                    "ranges": [
                        {
                            "type": "GIT",
                            "repo": "https://example.org/x.git",
                            "events": [{"introduced": "0"}, {"limit": "abc"}],
                        }
                    ]
                },
            ],
            references=[{"type": "ADVISORY", "url": "https://example.org/a"}],
            credits=[{"name": "someone", "contact": ["x@y"], "type": "FINDER"}],
            database_specific={"anything": 1},
        )
    )
    assert entry.aliases == ("CVE-2025-0001",)
    assert entry.summary == "bad thing"
    assert entry.severity == "medium"
    # The GIT-only entry has no package to match; Debian:12 keys as Debian.
    assert [(a.ecosystem, a.name) for a in entry.affected] == [("Debian", "OpenSSL")]
    assert entry.packages == (("Debian", "openssl"),)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the document must be an object"),
        ({"modified": "2026-01-02T03:04:05Z"}, "id must be a string"),
        (osv(id="bad id!"), "id must be"),
        ({"id": "X-1"}, "modified must be a string"),
        (osv(modified="2026-01-02 03:04:05"), "modified must be an RFC 3339"),
        (osv(modified="2026-13-40T03:04:05Z"), "modified is not a valid date"),
        (osv(withdrawn=5), "withdrawn must be a string"),
        (osv(aliases="CVE-1"), "aliases must be an array of strings"),
        (osv(aliases=[1]), r"aliases\[0\] must be a string"),
        (osv(summary=3), "summary must be a string"),
        (osv(severity=[{"type": "CVSS_V9", "score": "x"}]), r"severity\[0\].type"),
        (osv(severity=[{"type": "CVSS_V3"}]), r"severity\[0\].score must be"),
        (osv(affected={}), "affected must be an array"),
        (osv(affected=[affected_entry(package={"name": "x"})]), "ecosystem must be"),
        (
            osv(affected=[affected_entry(package={"ecosystem": "PyPI"})]),
            r"affected\[0\].package.name must be a string",
        ),
        (
            osv(affected=[affected_entry(package={"ecosystem": "", "name": "x"})]),
            "non-empty ecosystem and name",
        ),
        (
            osv(affected=[affected_entry(ranges=[{"type": "RANGE", "events": []}])]),
            r"affected\[0\].ranges\[0\].type must be one of GIT, SEMVER, ECOSYSTEM",
        ),
        (
            osv(affected=[affected_entry(ranges=[{"type": "SEMVER", "events": []}])]),
            "must have at least one event",
        ),
        (
            osv(
                affected=[
                    affected_entry(
                        ranges=[
                            {
                                "type": "SEMVER",
                                "events": [{"introduced": "0", "fixed": "1"}],
                            }
                        ]
                    )
                ]
            ),
            r"events\[0\] must have exactly one of",
        ),
        (
            osv(
                affected=[
                    affected_entry(
                        ranges=[{"type": "SEMVER", "events": [{"introduced": 0}]}]
                    )
                ]
            ),
            r"events\[0\].introduced must be a string",
        ),
        (
            osv(
                affected=[
                    affected_entry(
                        ranges=[{"type": "ECOSYSTEM", "events": [{"limit": "1"}]}]
                    )
                ]
            ),
            "limit is only allowed in GIT ranges",
        ),
        (
            osv(
                affected=[
                    affected_entry(
                        ranges=[{"type": "GIT", "events": [{"introduced": "0"}]}]
                    )
                ]
            ),
            r"ranges\[0\].repo must be a string",
        ),
        (osv(affected=[affected_entry(versions="1.0")]), "versions must be an array"),
        (osv(references=[{"type": "BLOG", "url": "u"}]), r"references\[0\].type"),
        (osv(references=[{"type": "WEB"}]), r"references\[0\].url must be"),
        (osv(credits=[{"contact": []}]), r"credits\[0\].name must be"),
        (osv(database_specific=[]), "database_specific must be an object"),
    ],
)
def test_broken_rules_are_named(document: object, message: str) -> None:
    with pytest.raises(OsvInvalid, match=message):
        parse_osv(document)


@pytest.mark.parametrize(
    ("fields", "severity"),
    [
        ({"severity": [{"type": "CVSS_V3", "score": CRITICAL_V3}]}, "critical"),
        ({"severity": [{"type": "CVSS_V4", "score": HIGH_V4}]}, "high"),
        (
            {
                "severity": [
                    {"type": "CVSS_V3", "score": MEDIUM_V3},
                    {"type": "CVSS_V4", "score": HIGH_V4},
                ]
            },
            "high",
        ),
        ({"severity": [{"type": "Ubuntu", "score": "medium"}]}, "medium"),
        (
            {"severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}]},
            "high",
        ),
        ({"severity": [{"type": "CVSS_V3", "score": "not a vector"}]}, "unknown"),
        ({"database_specific": {"severity": "MODERATE"}}, "medium"),
        ({"database_specific": {"severity": "weird"}}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_severity(fields: dict[str, object], severity: str) -> None:
    assert parse_osv(osv(**fields)).severity == severity


def test_a_bad_vector_is_unknown_not_an_error() -> None:
    assert score_severity("CVSS_V4", "CVSS:4.0/garbage") == "unknown"


def package(
    ecosystem: str,
    events: list[tuple[str, str]],
    *,
    range_type: str = "ECOSYSTEM",
    versions: tuple[str, ...] = (),
) -> AffectedPackage:
    return AffectedPackage(
        ecosystem,
        "p",
        (Range(range_type, tuple(Event(k, v) for k, v in events)),) if events else (),
        versions,
        "unknown",
    )


INTRO0 = ("introduced", "0")


@pytest.mark.parametrize(
    ("ecosystem", "range_type", "events", "version", "expected"),
    [
        # Debian: epochs, revisions, +debNuM security updates.
        ("Debian", "ECOSYSTEM", [INTRO0, ("fixed", "2.36-9+deb12u4")],
         "2.36-9+deb12u3", "2.36-9+deb12u4"),
        ("Debian", "ECOSYSTEM", [INTRO0, ("fixed", "2.36-9+deb12u4")],
         "2.36-9+deb12u4", None),
        ("Debian", "ECOSYSTEM", [INTRO0, ("fixed", "1:1.0-1")], "2.0-1", "1:1.0-1"),
        ("Debian", "ECOSYSTEM", [INTRO0, ("fixed", "1.10-1")], "1.9-1", "1.10-1"),
        # Alpine: -rN package revisions.
        ("Alpine", "ECOSYSTEM", [INTRO0, ("fixed", "1.36.1-r2")], "1.36.1-r1",
         "1.36.1-r2"),
        ("Alpine", "ECOSYSTEM", [INTRO0, ("fixed", "1.36.1-r2")], "1.36.1-r10", None),
        # PyPI: PEP 440.
        ("PyPI", "ECOSYSTEM", [("introduced", "2.0"), ("fixed", "2.31.0")], "2.28.1",
         "2.31.0"),
        ("PyPI", "ECOSYSTEM", [("introduced", "2.0"), ("fixed", "2.31.0")], "1.9",
         None),
        ("PyPI", "ECOSYSTEM", [("introduced", "2.0"), ("fixed", "2.31.0")], "2.31.0",
         None),
        ("PyPI", "ECOSYSTEM", [("introduced", "1.0"), ("fixed", "1.0.post1")],
         "1.0rc1", None),
        # last_affected: affected up to and including it; no fix known.
        ("PyPI", "ECOSYSTEM", [("introduced", "1.0"), ("last_affected", "1.5")], "1.5",
         "MATCH"),
        ("PyPI", "ECOSYSTEM", [("introduced", "1.0"), ("last_affected", "1.5")],
         "1.5.1", None),
        # Two affected stretches in one range, events not in order.
        ("PyPI", "ECOSYSTEM", [("fixed", "2.3"), ("introduced", "2.0"),
                               ("introduced", "1.0"), ("fixed", "1.2")], "1.5", None),
        ("PyPI", "ECOSYSTEM", [("fixed", "2.3"), ("introduced", "2.0"),
                               ("introduced", "1.0"), ("fixed", "1.2")], "2.1", "2.3"),
        ("PyPI", "ECOSYSTEM", [("fixed", "2.3"), ("introduced", "2.0"),
                               ("introduced", "1.0"), ("fixed", "1.2")], "1.1", "1.2"),
        # npm and Go: semantic versions (Go's with or without "v").
        ("npm", "SEMVER", [("introduced", "4.0.0"), ("fixed", "4.17.21")], "4.17.20",
         "4.17.21"),
        ("npm", "SEMVER", [("introduced", "4.0.0"), ("fixed", "4.17.21")], "4.9.0",
         "4.17.21"),
        ("npm", "SEMVER", [("introduced", "4.0.0"), ("fixed", "4.17.21")], "3.10.1",
         None),
        ("Go", "SEMVER", [INTRO0, ("fixed", "0.17.0")], "v0.16.0", "0.17.0"),
        ("Go", "ECOSYSTEM", [INTRO0, ("fixed", "1.21.5")], "v1.21.4", "1.21.5"),
        ("Go", "ECOSYSTEM", [INTRO0, ("fixed", "1.21.5")], "1.21.10", None),
        # Another ecosystem: ranges are not evaluated (exact versions only).
        ("Maven", "ECOSYSTEM", [INTRO0, ("fixed", "2.0")], "1.0", None),
        # A version the ecosystem cannot read never matches a range.
        ("PyPI", "ECOSYSTEM", [INTRO0], "not a version!", None),
    ],
)  # fmt: skip
def test_ranges(
    ecosystem: str,
    range_type: str,
    events: list[tuple[str, str]],
    version: str,
    expected: str | None,
) -> None:
    verdict = affects(package(ecosystem, events, range_type=range_type), version)
    if expected is None:
        assert verdict is None
    elif expected == "MATCH":
        assert verdict is not None
        assert verdict.fixed is None
    else:
        assert verdict is not None
        assert verdict.fixed == expected


def test_exact_versions_match_in_any_ecosystem() -> None:
    maven = package("Maven", [], versions=("1.0", "1.1"))
    assert affects(maven, "1.1") is not None
    assert affects(maven, "1.2") is None


def test_git_ranges_are_not_evaluated_against_package_versions() -> None:
    git = AffectedPackage(
        "PyPI", "p", (Range("GIT", (Event("introduced", "0"),)),), (), "unknown"
    )
    assert affects(git, "1.0") is None


@pytest.mark.parametrize(
    ("ecosystem", "name", "key"),
    [
        ("PyPI", "Foo_Bar.baz", "foo-bar-baz"),
        ("Debian", "LibSSL3", "libssl3"),
        ("npm", "@Scope/Pkg", "@Scope/Pkg"),
        ("Go", "golang.org/x/net", "golang.org/x/net"),
    ],
)
def test_package_keys(ecosystem: str, name: str, key: str) -> None:
    assert package_key(ecosystem, name) == key


def stored(document: dict[str, Any]) -> StoredVulnerability:
    entry = parse_osv(document)
    return StoredVulnerability(
        entry.id, entry.modified, entry.severity, entry.summary, entry.aliases, document
    )


def test_match_packages_across_ecosystems() -> None:
    packages = [
        ImagePackage("PyPI", "Requests", "2.28.1", "pkg:pypi/requests@2.28.1", "/a"),
        ImagePackage("Debian", "openssl", "3.0.11-1~deb12u1", "pkg:deb/x", "/b"),
        ImagePackage("npm", "lodash", "4.17.21", "pkg:npm/lodash@4.17.21", "/c"),
    ]
    requests = osv(
        id="PYSEC-1",
        severity=[{"type": "CVSS_V3", "score": MEDIUM_V3}],
        affected=[
            affected_entry(
                ranges=[
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "2.31.0"}],
                    }
                ],
                # The entry's own severity is worse than the document's.
                severity=[{"type": "CVSS_V3", "score": CRITICAL_V3}],
            )
        ],
    )
    openssl = osv(
        id="DSA-1",
        affected=[
            {
                "package": {"ecosystem": "Debian:12", "name": "openssl"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}],
                    }
                ],
            }
        ],
    )
    lodash_fixed = osv(
        id="GHSA-lodash",
        affected=[
            {
                "package": {"ecosystem": "npm", "name": "lodash"},
                "ranges": [
                    {
                        "type": "SEMVER",
                        "events": [{"introduced": "0"}, {"fixed": "4.17.21"}],
                    }
                ],
            }
        ],
    )
    withdrawn = osv(
        id="PYSEC-2",
        withdrawn="2026-01-03T00:00:00Z",
        affected=[affected_entry()],
    )
    found = match_packages(
        packages, [stored(d) for d in (requests, openssl, lodash_fixed, withdrawn)]
    )
    assert [(m.vulnerability, m.package, m.fixed, m.severity) for m in found] == [
        ("DSA-1", "openssl", "3.0.13-1~deb12u1", "unknown"),
        ("PYSEC-1", "Requests", "2.31.0", "critical"),
    ]


def test_a_draft_names_the_image_and_the_fix() -> None:
    vulnerability = stored(
        osv(id="PYSEC-1", aliases=["CVE-2026-1", "not an alias!"], summary="S")
    )
    matches = match_packages(
        [ImagePackage("PyPI", "requests", "2.0", "pkg:pypi/requests@2.0", "/a")],
        [
            stored(
                osv(
                    id="PYSEC-1",
                    affected=[
                        affected_entry(
                            ranges=[
                                {
                                    "type": "ECOSYSTEM",
                                    "events": [{"introduced": "0"}, {"fixed": "2.1"}],
                                }
                            ]
                        )
                    ],
                )
            )
        ],
    )
    digest = "sha256:" + "a" * 64
    document = draft_document(vulnerability, "acme/app", digest, matches)
    assert document["id"] == draft_id("PYSEC-1", "acme/app")
    assert document["id"] != draft_id("PYSEC-1", "acme/other")
    assert document["state"] == "draft"
    assert document["severity"] == "low"  # unknown is drafted as low
    assert document["aliases"] == ["PYSEC-1", "CVE-2026-1"]
    assert document["affected"] == [
        {"repository": "acme/app", "digests": [digest], "tags": []}
    ]
    assert "`requests` 2.0: fixed in 2.1" in document["description"]
    # It is a valid advisory document.
    assert parse_document(document).state == "draft"
