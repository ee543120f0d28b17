"""SPDX 2.3 and CycloneDX 1.6 documents, validated by their own libraries
(``spdx-tools``' parser and validator, ``cyclonedx-python-lib``'s JSON schema
validator), not by our code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from cargohold.metadata.packages import DONE, Description, PackageRecord
from cargohold.registry.sbom.documents import cyclonedx_document, spdx_document
from cargohold.registry.sbom.service import Described

DIGEST = "sha256:" + "ab" * 32
PACKAGES = [
    PackageRecord("Debian", "libc6", "2.36-9+deb12u4",
                  "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
                  "var/lib/dpkg/status"),
    PackageRecord("Alpine", "busybox", "1.36.1-r5",
                  "pkg:apk/alpine/busybox@1.36.1-r5?arch=x86_64",
                  "lib/apk/db/installed", "GPL-2.0-only"),
    PackageRecord("npm", "@scope/thing", "2.0.0", "pkg:npm/%40scope/thing@2.0.0",
                  "app/node_modules/@scope/thing/package.json", "MIT OR Apache-2.0"),
    PackageRecord("PyPI", "six", "1.16.0", "pkg:pypi/six@1.16.0",
                  "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                  "not a licence (really)"),
    PackageRecord("Go", "stdlib", "1.22.4", "pkg:golang/stdlib@1.22.4", "usr/bin/tool"),
]  # fmt: skip


def described(packages: list[PackageRecord] = PACKAGES) -> Described:
    description = Description(
        DIGEST, "team/app", DONE, 1_767_225_600.5, {"platform": {"os": "linux"}}
    )
    return Described("team/app", DIGEST, description, list(packages))


@pytest.mark.parametrize("packages", [PACKAGES, []])
def test_spdx_document_is_valid_spdx_2_3(
    tmp_path: Path, packages: list[PackageRecord]
) -> None:
    document = spdx_document(described(packages), registry="https://reg.example:5000/")
    path = tmp_path / "sbom.spdx.json"
    path.write_text(json.dumps(document))
    parsed = parse_file(str(path))
    assert validate_full_spdx_document(parsed, "SPDX-2.3") == []
    names = {(p.name, p.version) for p in parsed.packages}
    assert ("team/app", DIGEST) in names
    assert {(p.name, p.version) for p in packages} <= names
    assert document["documentNamespace"].startswith("https://reg.example:5000/spdx/")
    assert document["creationInfo"]["created"] == "2026-01-01T00:00:00Z"


def test_spdx_keeps_only_valid_licence_expressions() -> None:
    by_name = {
        p["name"]: p
        for p in spdx_document(described(), registry="http://r")["packages"]
    }
    assert by_name["busybox"]["licenseDeclared"] == "GPL-2.0-only"
    assert by_name["@scope/thing"]["licenseDeclared"] == "MIT OR Apache-2.0"
    assert by_name["six"]["licenseDeclared"] == "NOASSERTION"
    assert by_name["six"]["licenseComments"] == "declared as: not a licence (really)"


@pytest.mark.parametrize("packages", [PACKAGES, []])
def test_cyclonedx_document_is_valid_cyclonedx_1_6(
    packages: list[PackageRecord],
) -> None:
    document = cyclonedx_document(described(packages), registry="http://r")
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    assert error is None, error
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["type"] == "container"
    purls = {c["purl"] for c in document.get("components", [])}
    assert purls == {p.purl for p in packages}


def test_documents_are_deterministic() -> None:
    assert spdx_document(described(), registry="http://r") == spdx_document(
        described(), registry="http://r"
    )
    assert cyclonedx_document(described(), registry="http://r") == cyclonedx_document(
        described(), registry="http://r"
    )
