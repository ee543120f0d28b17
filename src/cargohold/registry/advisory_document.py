"""Advisory documents, contact addresses and ``Warning`` values: pure rules, no I/O.

An advisory document is what an administrator publishes (``POST /api/v1/advisories``)::

    {"id", "title", "severity": critical|high|medium|low,
     "state": draft|upcoming|current|resolved, "description" (Markdown),
     "affected": [{"repository", "digests": [...], "tags": [globs]}],
     "fixed_in": reference, "aliases": [CVE/GHSA ids], "url"}

``parse_document`` checks every field and raises ``InvalidRequest`` (400) naming the
first bad one; ``merge`` applies a partial update (``PATCH``) to a published document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid, NameInvalid
from cargohold.oci.names import RepositoryName, is_tag
from cargohold.registry.admin import InvalidRequest

SEVERITIES = ("critical", "high", "medium", "low")
# A ``draft`` (opened by the vulnerability matching, or saved by an administrator) is
# not published: no fan-out, no Warning header, not shown to non-administrators, until
# an administrator moves it to another state; a published advisory never goes back.
DRAFT = "draft"
STATES = (DRAFT, "upcoming", "current", "resolved")
FIELDS = (
    "id",
    "title",
    "severity",
    "state",
    "description",
    "affected",
    "fixed_in",
    "aliases",
    "url",
)
# Fields a PATCH may change (the id names the advisory and never changes).
UPDATABLE = FIELDS[1:]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_TAG_GLOB = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,128}$")
_URL = re.compile(r"^https?://[^\s\"<>\\]{1,2000}$")
MAX_TITLE = 200
MAX_DESCRIPTION = 32 * 1024
MAX_AFFECTED = 100
MAX_PER_ENTRY = 100
MAX_ALIASES = 20

# OCI distribution-spec v1.1, "Warnings": warn-code 299, warn-agent "-", no warn-date,
# and at most 4096 bytes of warning data across all Warning headers of a response.
MAX_WARNING_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Affected:
    repository: str
    digests: tuple[str, ...]
    tags: tuple[str, ...]  # globs

    def tag_matches(self, tag: str) -> bool:
        return any(fnmatchcase(tag, glob) for glob in self.tags)

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digests": list(self.digests),
            "tags": list(self.tags),
        }


@dataclass(frozen=True, slots=True)
class FixedIn:
    """``fixed_in`` parsed: ``[repository:]tag`` or ``[repository@]digest``.

    Without a repository it applies in every affected repository.
    """

    repository: str | None
    tag: str | None
    digest: str | None


@dataclass(frozen=True, slots=True)
class AdvisoryDocument:
    id: str
    title: str
    severity: str
    state: str
    description: str
    affected: tuple[Affected, ...]
    fixed_in: str | None
    aliases: tuple[str, ...]
    url: str | None

    @property
    def fix(self) -> FixedIn | None:
        return parse_fixed_in(self.fixed_in) if self.fixed_in else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "state": self.state,
            "description": self.description,
            "affected": [a.to_json() for a in self.affected],
            "fixed_in": self.fixed_in,
            "aliases": list(self.aliases),
            "url": self.url,
        }

    def affects(self, repository: str, tag: str) -> bool:
        """Whether a tag of ``repository`` named ``tag`` matches one of its globs."""
        return any(
            a.repository == repository and a.tag_matches(tag) for a in self.affected
        )


def _text(data: Mapping[str, Any], name: str, *, limit: int, required: bool) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidRequest(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise InvalidRequest(f"{name} is limited to {limit} characters")
    return value


def _choice(data: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = data.get(name)
    if value not in choices:
        raise InvalidRequest(f"{name} must be one of {', '.join(choices)}")
    return str(value)


def _strings(value: object, name: str, *, limit: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{name} must be a list of strings")
    if len(value) > limit:
        raise InvalidRequest(f"{name} is limited to {limit} entries")
    return list(value)


def _entry(index: int, entry: object) -> Affected:
    where = f"affected[{index}]"
    if not isinstance(entry, dict):
        raise InvalidRequest(f"{where} must be an object")
    unknown = sorted(set(entry) - {"repository", "digests", "tags"})
    if unknown:
        raise InvalidRequest(f"{where} has an unknown field {unknown[0][:80]!r}")
    repository = entry.get("repository")
    bad_name = InvalidRequest(
        f"{where}.repository is not a repository name: {str(repository)[:80]!r}"
    )
    if not isinstance(repository, str):
        raise bad_name
    try:
        RepositoryName.parse(repository)
    except NameInvalid:
        raise bad_name from None
    digests = _strings(entry.get("digests"), f"{where}.digests", limit=MAX_PER_ENTRY)
    for digest in digests:
        try:
            Digest.parse(digest)
        except DigestInvalid:
            raise InvalidRequest(
                f"{where}.digests: not a digest: {digest[:80]!r}"
            ) from None
    tags = _strings(entry.get("tags"), f"{where}.tags", limit=MAX_PER_ENTRY)
    for glob in tags:
        if not _TAG_GLOB.fullmatch(glob):
            raise InvalidRequest(f"{where}.tags: not a tag glob: {glob[:80]!r}")
    if not digests and not tags:
        raise InvalidRequest(f"{where} names no digests and no tags")
    return Affected(
        repository, tuple(dict.fromkeys(digests)), tuple(dict.fromkeys(tags))
    )


def _affected(value: object) -> tuple[Affected, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest("affected must be a non-empty list of objects")
    if len(value) > MAX_AFFECTED:
        raise InvalidRequest(f"affected is limited to {MAX_AFFECTED} entries")
    return tuple(_entry(index, entry) for index, entry in enumerate(value))


def parse_fixed_in(text: str) -> FixedIn:
    """``[repository:]tag`` or ``[repository@]digest``; ``InvalidRequest`` otherwise."""
    bad = InvalidRequest(
        "fixed_in must be a tag, a digest, repository:tag or repository@digest, "
        f"got {text[:80]!r}"
    )
    repository: str | None = None
    reference = text
    if "@" in text:
        repository, _, reference = text.partition("@")
        if not repository:
            raise bad
    else:
        try:
            return FixedIn(None, None, str(Digest.parse(text)))
        except DigestInvalid:
            pass
        if ":" in text:
            repository, _, reference = text.rpartition(":")
    if repository is not None:
        try:
            RepositoryName.parse(repository)
        except NameInvalid:
            raise bad from None
    if "@" in text:
        try:
            return FixedIn(repository, None, str(Digest.parse(reference)))
        except DigestInvalid:
            raise bad from None
    if not is_tag(reference):
        raise bad
    return FixedIn(repository, reference, None)


def parse_document(data: object) -> AdvisoryDocument:
    """A whole advisory document, checked field by field."""
    if not isinstance(data, dict):
        raise InvalidRequest("the advisory must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0][:80]!r}; expected {', '.join(FIELDS)}"
        )
    identifier = data.get("id")
    if not isinstance(identifier, str) or not _ID.fullmatch(identifier):
        raise InvalidRequest(
            "id must be 1-64 letters, digits and . _ : - (starting with a letter or "
            "digit), e.g. CH-2026-0001"
        )
    fixed_in = data.get("fixed_in")
    if fixed_in is not None:
        if not isinstance(fixed_in, str) or not fixed_in:
            raise InvalidRequest("fixed_in must be a reference string or null")
        parse_fixed_in(fixed_in)
    aliases = _strings(data.get("aliases"), "aliases", limit=MAX_ALIASES)
    for alias in aliases:
        if not ALIAS.fullmatch(alias):
            raise InvalidRequest(f"aliases: not an identifier: {alias[:80]!r}")
    url = data.get("url")
    if url is not None and (not isinstance(url, str) or not _URL.fullmatch(url)):
        raise InvalidRequest("url must be an http(s) URL or null")
    return AdvisoryDocument(
        id=identifier,
        title=_text(data, "title", limit=MAX_TITLE, required=True),
        severity=_choice(data, "severity", SEVERITIES),
        state=_choice(data, "state", STATES),
        description=_text(data, "description", limit=MAX_DESCRIPTION, required=False),
        affected=_affected(data.get("affected")),
        fixed_in=fixed_in,
        aliases=tuple(dict.fromkeys(aliases)),
        url=url,
    )


def merge(current: AdvisoryDocument, changes: object) -> AdvisoryDocument:
    """``current`` with the fields of a partial update replaced, checked again."""
    if not isinstance(changes, dict):
        raise InvalidRequest("the update must be a JSON object")
    if "id" in changes and changes["id"] != current.id:
        raise InvalidRequest("id cannot change")
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0][:80]!r}; expected {', '.join(UPDATABLE)}"
        )
    if not set(changes) - {"id"}:
        raise InvalidRequest(
            f"an update changes at least one of {', '.join(UPDATABLE)}"
        )
    if current.state != DRAFT and changes.get("state") == DRAFT:
        raise InvalidRequest("a published advisory cannot become a draft again")
    return parse_document(current.to_json() | changes)


def _quoted(text: str) -> str:
    """An RFC 7230 quoted-string of ``text``: printable ASCII, ``"`` and ``\\`` escaped.

    Characters a header cannot carry (controls, non-ASCII) become ``?``.
    """
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    escaped = safe.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def warning_value(identifier: str, title: str, fixed_in: str | None) -> str:
    """One ``Warning`` header value: ``299 - "<id>: <title>; fixed in <ref>"``."""
    text = f"{identifier}: {title}"
    if fixed_in:
        text += f"; fixed in {fixed_in}"
    return f"299 - {_quoted(text)}"


def within_limit(values: Iterable[str], limit: int = MAX_WARNING_BYTES) -> list[str]:
    """The values that fit, in order, in ``limit`` bytes of warning data in all."""
    kept: list[str] = []
    used = 0
    for value in values:
        size = len(value.encode("ascii"))
        if used + size > limit:
            continue
        kept.append(value)
        used += size
    return kept
