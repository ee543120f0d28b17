"""Image facts from a manifest and its config blob (pure): platform, created,
labels, sizes; and the packages found turned into rows with OSV ecosystems and purls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from packageurl import PackageURL

from cargohold.metadata.packages import PackageRecord
from cargohold.oci.manifest import Manifest
from cargohold.registry.sbom.detectors import APK, DPKG, GO, NPM, OS, PYPI, Found

IMAGE_CONFIGS = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)
CONFIG_CAP = 4 << 20
_LABELS_CAP = 256
# Column widths of ``image_packages`` (PostgreSQL enforces them).
_NAME, _PATH, _PURL = 255, 1024, 1024

# dpkg/apk databases by distribution (os-release ID): (OSV ecosystem, purl namespace).
_DEB = {"debian": ("Debian", "debian"), "ubuntu": ("Ubuntu", "ubuntu")}
_APK = {"alpine": ("Alpine", "alpine"), "wolfi": ("Wolfi", "wolfi")}


class ConfigInvalid(Exception):
    """The config blob is not a JSON object."""


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def config_facts(manifest: Manifest, config: bytes) -> dict[str, Any]:
    """What the metadata API shows about an image, from its config blob."""
    try:
        document = json.loads(config)
    except (ValueError, RecursionError):
        raise ConfigInvalid("the config blob is not JSON") from None
    if not isinstance(document, dict):
        raise ConfigInvalid("the config blob is not a JSON object")
    inner = document.get("config")
    labels_value = inner.get("Labels") if isinstance(inner, dict) else None
    labels = {
        k: v
        for k, v in (labels_value.items() if isinstance(labels_value, dict) else ())
        if isinstance(k, str) and isinstance(v, str)
    }
    platform = {
        key: value
        for key in ("os", "architecture", "variant")
        if (value := _string(document.get(key))) is not None
    }
    layers = [
        {"digest": str(d.digest), "size": d.size, "media_type": d.media_type}
        for d in manifest.layers
    ]
    config_size = manifest.config.size if manifest.config else len(config)
    return {
        "platform": platform,
        "created": _string(document.get("created")),
        "labels": dict(sorted(labels.items())[:_LABELS_CAP]),
        "config_size": config_size,
        "layers": layers,
        "size": config_size + sum(d.size for d in manifest.layers),
    }


def distribution(found: Iterable[Found]) -> tuple[str, str] | None:
    """(ID, VERSION_ID) of the image's os-release; ``etc/`` wins over ``usr/lib``."""
    releases = {f.path: f for f in found if f.kind == OS}
    chosen = releases.get("etc/os-release") or releases.get("usr/lib/os-release")
    return (chosen.name, chosen.version) if chosen else None


def _purl(found: Found, namespace: str | None, distro: str | None) -> str:
    qualifiers: dict[str, str] = {}
    purl_type: str
    match found.kind:
        case "deb" | "apk":
            purl_type = found.kind
            if found.arch:
                qualifiers["arch"] = found.arch
            if distro:
                qualifiers["distro"] = distro
            name, version = found.name, found.version
        case "PyPI":
            purl_type, name, version = "pypi", _pypi_name(found.name), found.version
        case "npm":
            purl_type, version = "npm", found.version
            scope, _, bare = found.name.rpartition("/")
            namespace, name = (scope or None), bare
        case _:
            purl_type, version = "golang", found.version
            namespace, _, name = found.name.rpartition("/")
            namespace = namespace or None
    return PackageURL(
        type=purl_type,
        namespace=namespace,
        name=name,
        version=version,
        qualifiers=qualifiers or None,
    ).to_string()


def _pypi_name(name: str) -> str:
    # PEP 503 normalisation, as the pypi purl type asks.
    return "-".join(
        part
        for part in name.lower().replace("_", "-").replace(".", "-").split("-")
        if part
    )


def package_rows(found: Iterable[Found]) -> list[PackageRecord]:
    """Rows for ``image_packages``: OSV ecosystems, purls; duplicates (same package at
    the same path) once; values too long for the table left out."""
    items = list(found)
    distro = distribution(items)
    distro_id = distro[0] if distro else ""
    distro_tag = f"{distro[0]}-{distro[1]}" if distro and distro[1] else distro_id
    rows: dict[tuple[str, str, str, str], PackageRecord] = {}
    for item in items:
        if item.kind == OS:
            continue
        namespace: str | None = None
        if item.kind == DPKG:
            ecosystem, namespace = _DEB.get(distro_id, ("Debian", "debian"))
        elif item.kind == APK:
            ecosystem, namespace = _APK.get(distro_id, ("Alpine", "alpine"))
        else:
            ecosystem = {PYPI: "PyPI", NPM: "npm", GO: "Go"}[item.kind]
        purl = _purl(item, namespace, distro_tag or None)
        if (
            len(item.name) > _NAME
            or len(item.version) > _NAME
            or len(item.path) > _PATH
            or len(purl) > _PURL
        ):
            continue
        license_ = item.license if item.license and len(item.license) <= _NAME else None
        key = (ecosystem, item.name, item.version, item.path)
        rows.setdefault(
            key,
            PackageRecord(
                ecosystem, item.name, item.version, purl, item.path, license_
            ),
        )
    return sorted(rows.values(), key=lambda r: (r.ecosystem, r.name, r.version, r.path))
