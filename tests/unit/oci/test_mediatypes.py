"""``cargohold.oci.mediatypes``: the media type sets and ``Content-Type`` parsing."""

from __future__ import annotations

import pytest

from cargohold.oci import mediatypes as mt


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, ""),
        ("", ""),
        (mt.OCI_MANIFEST, mt.OCI_MANIFEST),
        (f"{mt.OCI_MANIFEST}; charset=utf-8", mt.OCI_MANIFEST),
        (f"  {mt.OCI_INDEX} ;q=1", mt.OCI_INDEX),
        ("Application/VND.OCI.Image.Manifest.v1+JSON", mt.OCI_MANIFEST),
        (";charset=utf-8", ""),
    ],
)
def test_base(content_type: str | None, expected: str) -> None:
    assert mt.base(content_type) == expected


def test_sets_partition_the_known_types() -> None:
    image_manifests = {mt.OCI_MANIFEST, mt.DOCKER_MANIFEST}
    indexes = {mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST}
    assert image_manifests == mt.IMAGE_MANIFESTS
    assert indexes == mt.INDEXES
    assert image_manifests | indexes == mt.MANIFESTS
    assert {mt.DOCKER_SCHEMA1, mt.DOCKER_SCHEMA1_SIGNED} == mt.LEGACY
    assert not mt.IMAGE_MANIFESTS & mt.INDEXES
    assert not mt.MANIFESTS & mt.LEGACY
    assert mt.OCI_EMPTY not in mt.MANIFESTS
