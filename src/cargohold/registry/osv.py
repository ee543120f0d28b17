"""OSV documents: the schema's rules, severity, and version matching. Pure, no I/O.

``parse_osv`` checks one document against the rules of the OSV schema (version 1.6,
https://ossf.github.io/osv-schema/): required fields and their types, enumerations,
timestamps in RFC 3339, one event kind per range event, ``repo`` on GIT ranges; it
raises ``OsvInvalid`` naming the first bad field. Unknown top-level fields are allowed
(the schema allows them too). Written from the specification's text, not from a copy of
its JSON Schema file.

``affected_versions`` evaluates an ``affected`` entry for one package version with the
specification's algorithm ("Evaluation"): events sorted by version, ``introduced``
opens, ``fixed`` and past ``last_affected`` close. Versions compare by each
ecosystem's rules through ``univers`` (Debian, Alpine, PyPI, npm, Go; SEMVER ranges
for any ecosystem); other ecosystems match only the exact ``versions`` list.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cvss
from univers.versions import (
    AlpineLinuxVersion,
    DebianVersion,
    GolangVersion,
    InvalidVersion,
    PypiVersion,
    SemverVersion,
    Version,
)

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}
SEVERITY_TYPES = ("CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu")
RANGE_TYPES = ("GIT", "SEMVER", "ECOSYSTEM")
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
REFERENCE_TYPES = (
    "ADVISORY", "ARTICLE", "DETECTION", "DISCUSSION", "REPORT", "FIX", "INTRODUCED",
    "GIT", "PACKAGE", "EVIDENCE", "WEB",
)  # fmt: skip
CREDIT_TYPES = (
    "FINDER", "REPORTER", "ANALYST", "COORDINATOR", "REMEDIATION_DEVELOPER",
    "REMEDIATION_REVIEWER", "REMEDIATION_VERIFIER", "TOOL", "SPONSOR", "OTHER",
)  # fmt: skip
# OSV ids are "<prefix>-<id>" (GHSA-..., PYSEC-..., CVE-..., DSA-..., GO-...); 64 is
# the ``vulnerabilities.id`` column's width.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$")
# RFC 3339 in UTC as the schema requires ("Z"), fractional seconds allowed.
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class OsvInvalid(ValueError):
    """A document breaks a rule of the OSV schema; the message names the field."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # introduced | fixed | last_affected | limit
    version: str


@dataclass(frozen=True, slots=True)
class Range:
    type: str  # GIT | SEMVER | ECOSYSTEM
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    ecosystem: (
        str  # the OSV ecosystem without its release suffix ("Debian:12" -> Debian)
    )
    name: str
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    severity: str  # from this entry's own ``severity``, else "unknown"


@dataclass(frozen=True, slots=True)
class OsvEntry:
    """What the registry keeps of one OSV document."""

    id: str
    modified: float  # seconds since the epoch
    withdrawn: bool
    severity: str  # one of SEVERITIES
    summary: str | None
    aliases: tuple[str, ...]
    affected: tuple[AffectedPackage, ...]
    document: Mapping[str, Any]

    @property
    def packages(self) -> tuple[tuple[str, str], ...]:
        """The distinct (ecosystem, normalised name) pairs it affects."""
        seen = {(a.ecosystem, package_key(a.ecosystem, a.name)) for a in self.affected}
        return tuple(sorted(seen))


def base_ecosystem(ecosystem: str) -> str:
    """``Debian:12`` -> ``Debian``, ``Alpine:v3.19`` -> ``Alpine``."""
    return ecosystem.partition(":")[0]


def package_key(ecosystem: str, name: str) -> str:
    """A package name as it is compared: PyPI's normalised (PEP 503), Go's and
    npm's as written, the distributions' lower-cased."""
    if ecosystem == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    if ecosystem in {"Debian", "Alpine", "Ubuntu", "Wolfi"}:
        return name.lower()
    return name


# ---------------------------------------------------------------- the schema's rules


def _fail(where: str, rule: str) -> OsvInvalid:
    return OsvInvalid(f"{where} {rule}")


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, "must be a string")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _fail(where, "must be an array of strings")
    return tuple(_string(v, f"{where}[{i}]") for i, v in enumerate(value))


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "must be an object")
    return value


def _array(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, "must be an array")
    return value


def _enum(value: object, where: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise _fail(where, f"must be one of {', '.join(choices)}")
    return str(value)


def timestamp(value: object, where: str) -> float:
    text = _string(value, where)
    if not _TIMESTAMP.match(text):
        raise _fail(where, "must be an RFC 3339 timestamp in UTC (…Z)")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as e:
        raise _fail(where, f"is not a valid date ({e})") from e


def _severity_list(value: object, where: str) -> str:
    worst = "unknown"
    for i, item in enumerate(_array(value, where)):
        entry = _object(item, f"{where}[{i}]")
        kind = _enum(entry.get("type"), f"{where}[{i}].type", SEVERITY_TYPES)
        score = _string(entry.get("score"), f"{where}[{i}].score")
        worst = worse(worst, score_severity(kind, score))
    return worst


def _events(value: object, where: str, range_type: str) -> tuple[Event, ...]:
    items = _array(value, where)
    if not items:
        raise _fail(where, "must have at least one event")
    events: list[Event] = []
    for i, item in enumerate(items):
        event = _object(item, f"{where}[{i}]")
        kinds = [k for k in EVENT_KINDS if k in event]
        if len(kinds) != 1 or len(event) != 1:
            raise _fail(
                f"{where}[{i}]", f"must have exactly one of {', '.join(EVENT_KINDS)}"
            )
        kind = kinds[0]
        version = _string(event[kind], f"{where}[{i}].{kind}")
        if kind == "limit" and range_type != "GIT":
            raise _fail(f"{where}[{i}]", "limit is only allowed in GIT ranges")
        events.append(Event(kind, version))
    return tuple(events)


def _range(value: object, where: str) -> Range:
    entry = _object(value, where)
    kind = _enum(entry.get("type"), f"{where}.type", RANGE_TYPES)
    if kind == "GIT":
        _string(entry.get("repo"), f"{where}.repo")
    elif "repo" in entry:
        _string(entry["repo"], f"{where}.repo")
    if "database_specific" in entry:
        _object(entry["database_specific"], f"{where}.database_specific")
    return Range(kind, _events(entry.get("events"), f"{where}.events", kind))


def _affected(value: object, where: str) -> AffectedPackage | None:
    entry = _object(value, where)
    severity = "unknown"
    if "severity" in entry:
        severity = _severity_list(entry["severity"], f"{where}.severity")
    ranges = tuple(
        _range(r, f"{where}.ranges[{i}]")
        for i, r in enumerate(_array(entry.get("ranges", []), f"{where}.ranges"))
    )
    versions = _strings(entry.get("versions", []), f"{where}.versions")
    for name in ("ecosystem_specific", "database_specific"):
        if name in entry:
            _object(entry[name], f"{where}.{name}")
    if "package" not in entry:
        return None  # a GIT-only entry: nothing to match package versions against
    package = _object(entry["package"], f"{where}.package")
    ecosystem = _string(package.get("ecosystem"), f"{where}.package.ecosystem")
    name = _string(package.get("name"), f"{where}.package.name")
    if not ecosystem or not name:
        raise _fail(f"{where}.package", "needs a non-empty ecosystem and name")
    if "purl" in package:
        _string(package["purl"], f"{where}.package.purl")
    base = base_ecosystem(ecosystem)
    return AffectedPackage(base, name, ranges, versions, severity)


def _check_fields(document: Mapping[str, Any]) -> None:
    for name in ("aliases", "related", "upstream"):
        if name in document:
            _strings(document[name], name)
    for name in ("summary", "details", "schema_version"):
        if name in document:
            _string(document[name], name)
    for name in ("published", "withdrawn"):
        if name in document:
            timestamp(document[name], name)
    if "database_specific" in document:
        _object(document["database_specific"], "database_specific")


def _check_lists(document: Mapping[str, Any]) -> None:
    _check_fields(document)
    for i, item in enumerate(_array(document.get("references", []), "references")):
        reference = _object(item, f"references[{i}]")
        _enum(reference.get("type"), f"references[{i}].type", REFERENCE_TYPES)
        _string(reference.get("url"), f"references[{i}].url")
    for i, item in enumerate(_array(document.get("credits", []), "credits")):
        credit = _object(item, f"credits[{i}]")
        _string(credit.get("name"), f"credits[{i}].name")
        if "contact" in credit:
            _strings(credit["contact"], f"credits[{i}].contact")
        if "type" in credit:
            _enum(credit["type"], f"credits[{i}].type", CREDIT_TYPES)


def parse_osv(data: object) -> OsvEntry:
    """One OSV document checked and read.

    Raises:
        OsvInvalid: a rule of the schema is broken (the message names the field).
    """
    document = _object(data, "the document")
    ident = _string(document.get("id"), "id")
    if not _ID.match(ident):
        raise _fail("id", "must be 1-64 letters, digits and . _ : + - (e.g. GHSA-…)")
    modified = timestamp(document.get("modified"), "modified")
    _check_lists(document)
    severity = "unknown"
    if "severity" in document:
        severity = _severity_list(document["severity"], "severity")
    specific = document.get("database_specific")
    if severity == "unknown" and isinstance(specific, dict):
        severity = word_severity(specific.get("severity"))
    affected = tuple(
        found
        for i, item in enumerate(_array(document.get("affected", []), "affected"))
        if (found := _affected(item, f"affected[{i}]")) is not None
    )
    summary = document.get("summary")
    return OsvEntry(
        id=ident,
        modified=modified,
        withdrawn="withdrawn" in document,
        severity=severity,
        summary=summary if isinstance(summary, str) else None,
        aliases=tuple(document.get("aliases", ())),
        affected=affected,
        document=document,
    )


# ---------------------------------------------------------------- severity


def worse(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def word_severity(value: object) -> str:
    """A severity word (GHSA's ``MODERATE``, Ubuntu's ``medium``...) as ours."""
    if not isinstance(value, str):
        return "unknown"
    word = value.strip().lower()
    if word in {"critical", "high", "medium", "low"}:
        return word
    if word == "moderate":
        return "medium"
    if word in {"negligible", "none", "unimportant"}:
        return "low"
    return "unknown"


def score_severity(kind: str, score: str) -> str:
    """The severity of one OSV ``severity`` entry; a vector that does not parse is
    "unknown" (a feed's odd vector must not refuse the whole document)."""
    try:
        if kind == "CVSS_V3":
            return word_severity(cvss.CVSS3(score).severities()[0])
        if kind == "CVSS_V4":
            return word_severity(cvss.CVSS4(score).severity)
        if kind == "CVSS_V2":
            return _v2_severity(float(cvss.CVSS2(score).scores()[0]))
    except (cvss.CVSSError, ValueError, KeyError, IndexError):
        return "unknown"
    return word_severity(score)  # Ubuntu: a word


def _v2_severity(score: float) -> str:
    # CVSS v2 has no qualitative scale of its own; NVD's: 7.0+ high, 4.0+ medium.
    if score >= 7.0:  # noqa: PLR2004 - the NVD thresholds
        return "high"
    return "medium" if score >= 4.0 else "low"  # noqa: PLR2004


# ---------------------------------------------------------------- matching

_ORDERS: dict[str, Callable[[str], Version]] = {
    "Debian": DebianVersion,
    "Ubuntu": DebianVersion,
    "Alpine": AlpineLinuxVersion,
    "Wolfi": AlpineLinuxVersion,
    "PyPI": PypiVersion,
    "npm": SemverVersion,
}


def _golang(text: str) -> Version:
    return GolangVersion(text if text.startswith("v") else f"v{text}")


def _semver(text: str) -> Version:
    return SemverVersion(text.removeprefix("v"))


def order_for(ecosystem: str, range_type: str) -> Callable[[str], Version] | None:
    """How versions of a range compare, or None (only exact versions match)."""
    if range_type == "SEMVER":
        return _semver
    if range_type != "ECOSYSTEM":
        return None
    if ecosystem == "Go":
        return _golang
    return _ORDERS.get(ecosystem)


@dataclass(frozen=True, slots=True)
class Verdict:
    fixed: str | None  # the lowest fixed version above the package's, if any


@functools.total_ordering
class _Bottom:
    """Sorts below every version: the key of ``introduced: "0"``."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Bottom)

    def __lt__(self, other: object) -> bool:
        return not isinstance(other, _Bottom)

    def __hash__(self) -> int:
        return 0


def _first_none(item: tuple[Version | None, Event]) -> Any:
    return _Bottom() if item[0] is None else item[0]


def _in_range(
    version: Version, events: Sequence[Event], order: Callable[[str], Version]
) -> tuple[bool, str | None]:
    """The specification's evaluation of one range; and the fix above ``version``."""

    def bound(event: Event) -> Version | None:
        # introduced "0" stands for "before every version" and sorts first.
        if event.kind == "introduced" and event.version == "0":
            return None
        return order(event.version)

    parsed = [(bound(e), e) for e in events if e.kind != "limit"]
    parsed.sort(key=_first_none)
    vulnerable = False
    for at, event in parsed:
        # Only ``<`` is used: univers's Alpine (Gentoo) versions answer ``>=`` wrongly
        # (1.36.1-r10 >= 1.36.1-r2 is False while > is True).
        if event.kind == "introduced" and (at is None or not version < at):
            vulnerable = True
        elif (event.kind == "fixed" and at is not None and not version < at) or (
            event.kind == "last_affected" and at is not None and at < version
        ):
            vulnerable = False
    if not vulnerable:
        return False, None
    fixes = [(b, e.version) for b, e in parsed if e.kind == "fixed" and b is not None]
    above = [(b, text) for b, text in fixes if version < b]
    return True, min(above, key=lambda item: item[0])[1] if above else None


def affects(package: AffectedPackage, version: str) -> Verdict | None:
    """Whether ``version`` of the package is affected: a ``Verdict`` with the fix,
    or None. A version or bound that does not parse in the ecosystem never matches
    a range (only the exact ``versions`` list then)."""
    found = version in package.versions
    fixed: str | None = None
    for entry in package.ranges:
        order = order_for(package.ecosystem, entry.type)
        if order is None:
            continue
        try:
            hit, fix = _in_range(order(version), entry.events, order)
            if hit and fix is not None and fixed is not None:
                fix = fix if order(fix) < order(fixed) else fixed
        except (InvalidVersion, ValueError, TypeError):
            continue
        if hit:
            found = True
            fixed = fix or fixed
    return Verdict(fixed) if found else None
