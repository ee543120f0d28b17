"""Package detectors: which tar members they want, and what they find in them.

Each detector reads one member (at most its cap) and returns ``Found`` rows; bad
content finds nothing rather than failing the image, since one odd file must not hide
every other package. Paths are relative to the image root (``layers.normalise``).

* dpkg: ``var/lib/dpkg/status`` (installed stanzas) and ``var/lib/dpkg/status.d/*``
  (distroless: one file per package, no ``Status`` field);
* apk: ``lib/apk/db/installed`` (Alpine, Wolfi);
* Python: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO`` and single-file
  ``*.egg-info``;
* npm: ``node_modules/<name>/package.json`` and ``node_modules/@scope/<name>/...``;
* Go: build info in ELF binaries (``gobuild``);
* the distribution: ``etc/os-release`` (or ``usr/lib/os-release``), kind ``os``.

RPM databases are not read: no library on PyPI reads the rpmdb's header blobs
(Berkeley DB, NDB or SQLite) without the system's librpm bindings.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import HeaderParser
from typing import IO

from cargohold.registry.sbom import gobuild

DPKG, APK, PYPI, NPM, GO, OS = "deb", "apk", "PyPI", "npm", "Go", "os"

_DB_CAP = 64 << 20  # dpkg status, apk installed: big distributions stay well under
_METADATA_CAP = 1 << 20  # headers of a Python METADATA, a package.json
_OS_RELEASE_CAP = 64 << 10
_FIELD_CAP = 200  # a licence or version longer than this is not one
_NPM_NAME = re.compile(r"^(@[^/@\s]+/)?[^/@\s]+$")


@dataclass(frozen=True, slots=True)
class Found:
    """A package (or, kind ``os``, the distribution) found at ``path``.

    ``kind``: ``deb``, ``apk``, ``PyPI``, ``npm``, ``Go`` or ``os``; the distribution
    (``os``) turns ``deb`` and ``apk`` into their OSV ecosystem and purl namespace.
    """

    kind: str
    name: str
    version: str
    path: str
    license: str | None = None
    arch: str | None = None
    source: str | None = None  # dpkg ``Source`` / apk origin, when it differs


Detector = Callable[[str, IO[bytes], int], list[Found]]
Wanted = Detector


def _read(handle: IO[bytes], cap: int) -> bytes:
    return handle.read(cap)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def stanzas(text: str) -> list[dict[str, str]]:
    """RFC 822-style paragraphs (dpkg status); continuation lines are kept joined."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                current[last] += "\n" + line.strip()
        else:
            key, sep, value = line.partition(":")
            if sep:
                last = key.strip()
                current[last] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def _dpkg_source(paragraph: dict[str, str], name: str) -> str | None:
    source = paragraph.get("Source", "").split(" ", 1)[0]
    return source if source and source != name else None


def dpkg(path: str, handle: IO[bytes], _size: int) -> list[Found]:
    found = []
    for paragraph in stanzas(_text(_read(handle, _DB_CAP))):
        name, version = paragraph.get("Package"), paragraph.get("Version")
        if not name or not version:
            continue
        # status.d (distroless) has no Status; status has "install ok installed".
        status = paragraph.get("Status")
        if status is not None and status.split()[-1:] != ["installed"]:
            continue
        found.append(
            Found(
                DPKG,
                name,
                version,
                path,
                arch=paragraph.get("Architecture") or None,
                source=_dpkg_source(paragraph, name),
            )
        )
    return found


def apk(path: str, handle: IO[bytes], _size: int) -> list[Found]:
    found = []
    for block in _text(_read(handle, _DB_CAP)).split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and len(key) == 1:
                fields.setdefault(key, value)
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        origin = fields.get("o")
        found.append(
            Found(
                APK,
                name,
                version,
                path,
                license=fields.get("L") or None,
                arch=fields.get("A") or None,
                source=origin if origin and origin != name else None,
            )
        )
    return found


def python(path: str, handle: IO[bytes], _size: int) -> list[Found]:
    text = _text(_read(handle, _METADATA_CAP))
    head = text.split("\n\n", 1)[0]
    headers = HeaderParser().parsestr(head, headersonly=True)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return []
    license_ = headers.get("License-Expression") or headers.get("License")
    if license_ is not None and (len(license_) > _FIELD_CAP or "\n" in license_):
        license_ = None  # a whole licence text, not a name
    return [Found(PYPI, str(name).strip(), str(version).strip(), path, license_)]


def _npm_license(document: dict[str, object]) -> str | None:
    value = document.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str) and value and len(value) <= _FIELD_CAP:
        return value
    licenses = document.get("licenses")
    if isinstance(licenses, list):
        names = [
            entry.get("type")
            for entry in licenses
            if isinstance(entry, dict) and isinstance(entry.get("type"), str)
        ]
        if names:
            return " OR ".join(str(n) for n in names)
    return None


def npm(path: str, handle: IO[bytes], size: int) -> list[Found]:
    if size > _METADATA_CAP:
        return []
    try:
        document = json.loads(_read(handle, _METADATA_CAP))
    except (ValueError, RecursionError):
        return []
    if not isinstance(document, dict):
        return []
    name, version = document.get("name"), document.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return []
    if not _NPM_NAME.match(name) or not version or len(version) > _FIELD_CAP:
        return []
    return [Found(NPM, name, version, path, _npm_license(document))]


def os_release(path: str, handle: IO[bytes], _size: int) -> list[Found]:
    fields: dict[str, str] = {}
    for line in _text(_read(handle, _OS_RELEASE_CAP)).splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    name = fields.get("ID")
    if not name:
        return []
    return [Found(OS, name, fields.get("VERSION_ID", ""), path)]


def go(path: str, handle: IO[bytes], size: int) -> list[Found]:
    info = gobuild.read(handle, size)
    if info is None:
        return []
    found = []
    if info.go_version.startswith("go"):
        found.append(Found(GO, "stdlib", info.go_version[2:], path))
    found.extend(
        Found(GO, module.path, module.version, path)
        for module in info.modules
        if module.version and module.version != "(devel)"
    )
    return found


def _is_npm_manifest(path: str) -> bool:
    """``node_modules/<name>/package.json`` or ``node_modules/@scope/<name>/...``."""
    parts = ["", "", "", *path.split("/")]
    if parts[-3] == "node_modules":
        return not parts[-2].startswith((".", "@"))
    return parts[-4] == "node_modules" and parts[-3].startswith("@")


_BY_PATH: dict[str, Detector] = {
    "var/lib/dpkg/status": dpkg,
    "lib/apk/db/installed": apk,
    "etc/os-release": os_release,
    "usr/lib/os-release": os_release,
}


def _by_name(directory: str, base: str, path: str) -> Detector | None:
    if directory == "var/lib/dpkg/status.d" and not base.endswith(".md5sums"):
        return dpkg
    python_metadata = (
        (base == "METADATA" and directory.endswith(".dist-info"))
        or (base == "PKG-INFO" and directory.endswith(".egg-info"))
        or base.endswith(".egg-info")
    )
    if python_metadata:
        return python
    if base == "package.json" and _is_npm_manifest(path):
        return npm
    return None


def want(path: str, size: int) -> Detector | None:
    """The detector for the member at ``path`` (``size`` bytes), or None."""
    if path in _BY_PATH:
        return _BY_PATH[path]
    directory, base = posixpath.split(path)
    if base == "package.json":
        return npm if _is_npm_manifest(path) else None
    found = _by_name(directory, base, path)
    if found is None and gobuild.MIN_SIZE <= size <= gobuild.MAX_SIZE:
        return go
    return found
