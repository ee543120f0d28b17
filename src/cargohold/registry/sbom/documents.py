"""SBOM documents of a described image: SPDX 2.3 JSON and CycloneDX 1.6 JSON.

Both are built from what ``SbomService.described`` returns and nothing else, and are
deterministic (timestamps are the description's, identifiers derive from the digest),
so an attestation made twice from the same description carries the same document.
Licences that are not valid SPDX expressions are left as NOASSERTION (SPDX) or given
as a licence name (CycloneDX).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.model.tool import Tool
from cyclonedx.output.json import JsonV1Dot6
from license_expression import ExpressionError, get_spdx_licensing
from packageurl import PackageURL

import cargohold

if TYPE_CHECKING:
    from cargohold.metadata.packages import PackageRecord
    from cargohold.registry.sbom.service import Described

NOASSERTION = "NOASSERTION"
_NAMESPACE = uuid.UUID("8f7d4b1e-4f2c-4e8e-9a51-6c0a0d9b6e11")
_LICENSING = get_spdx_licensing()


def _created(described: Described) -> datetime:
    return datetime.fromtimestamp(described.description.described_at, tz=UTC).replace(
        microsecond=0
    )


def _spdx_license(value: str | None) -> str | None:
    """``value`` as a valid SPDX licence expression, or None."""
    if not value:
        return None
    try:
        info = _LICENSING.validate(value, strict=True)
    except ExpressionError:
        return None
    if info.errors or info.invalid_symbols:
        return None
    return str(info.normalized_expression or value)


def _image_purl(described: Described, registry: str) -> str:
    name = described.repository.rsplit("/", 1)[-1]
    return PackageURL(
        type="oci",
        name=name,
        version=described.digest,
        # purl's repository_url is a host and path, without a scheme.
        qualifiers={
            "repository_url": f"{urlsplit(registry).netloc}/{described.repository}"
        },
    ).to_string()


def _spdx_package(index: int, package: PackageRecord) -> dict[str, Any]:
    licence = _spdx_license(package.license)
    entry: dict[str, Any] = {
        "SPDXID": f"SPDXRef-Package-{index}",
        "name": package.name,
        "versionInfo": package.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": licence or NOASSERTION,
        "copyrightText": NOASSERTION,
        "sourceInfo": f"{package.ecosystem} package found at /{package.path}",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": package.purl,
            }
        ],
    }
    if package.license and licence is None:
        entry["licenseComments"] = f"declared as: {package.license}"
    return entry


def spdx_document(described: Described, *, registry: str) -> dict[str, Any]:
    """SPDX 2.3 JSON of the image: one package for the image, one per package found,
    the image ``CONTAINS`` each. ``registry``: the registry's public base URL (the
    document namespace and the image's purl are under it)."""
    registry = registry.rstrip("/")
    image = {
        "SPDXID": "SPDXRef-Image",
        "name": described.repository,
        "versionInfo": described.digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [
            {"algorithm": "SHA256", "checksumValue": described.digest.split(":", 1)[1]}
        ],
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": _image_purl(described, registry),
            }
        ],
    }
    packages = [_spdx_package(i, p) for i, p in enumerate(described.packages, 1)]
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Image",
        },
        *(
            {
                "spdxElementId": "SPDXRef-Image",
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": p["SPDXID"],
            }
            for p in packages
        ),
    ]
    where = quote(f"{described.repository}@{described.digest}", safe="/@:")
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{described.repository}@{described.digest}",
        "documentNamespace": f"{registry}/spdx/{where}",
        "creationInfo": {
            "created": _created(described).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": [f"Tool: cargohold-{cargohold.__version__}"],
        },
        "packages": [image, *packages],
        "relationships": relationships,
    }


def _cyclonedx_licences(value: str | None) -> list[Any]:
    if not value:
        return []
    expression = _spdx_license(value)
    if expression is not None:
        return [LicenseExpression(expression)]
    return [DisjunctiveLicense(name=value)]


def cyclonedx_document(described: Described, *, registry: str) -> dict[str, Any]:
    """CycloneDX 1.6 JSON of the image: the image is ``metadata.component`` (a
    container), each package a library component with its purl, depended on by it."""
    registry = registry.rstrip("/")
    bom = Bom(
        serial_number=uuid.uuid5(
            _NAMESPACE, f"{registry}/{described.repository}@{described.digest}"
        )
    )
    bom.metadata.timestamp = _created(described)
    bom.metadata.tools.tools.add(
        Tool(vendor="cargohold", name="cargohold", version=cargohold.__version__)
    )
    image = Component(
        type=ComponentType.CONTAINER,
        name=described.repository,
        version=described.digest,
        bom_ref=described.digest,
        purl=PackageURL.from_string(_image_purl(described, registry)),
    )
    bom.metadata.component = image
    components = []
    for index, package in enumerate(described.packages, 1):
        component = Component(
            type=ComponentType.LIBRARY,
            name=package.name,
            version=package.version,
            bom_ref=f"pkg-{index}",
            purl=PackageURL.from_string(package.purl),
            licenses=_cyclonedx_licences(package.license),
            properties=[
                Property(name="cargohold:ecosystem", value=package.ecosystem),
                Property(name="cargohold:path", value=f"/{package.path}"),
            ],
        )
        bom.components.add(component)
        components.append(component)
    bom.register_dependency(image, components)
    loaded: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return loaded
