"""``cargohold.oci.manifest``: parsing and validating manifests and indexes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cargohold.oci import mediatypes as mt
from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid, ManifestInvalid, Unsupported
from cargohold.oci.manifest import (
    MAX_MANIFEST_DEPTH,
    Descriptor,
    Manifest,
    parse_manifest,
)

CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
SBOM = "application/spdx+json"

Document = dict[str, Any]


def desc(data: bytes = b"layer", media_type: str = LAYER, **extra: Any) -> Document:
    return {
        "mediaType": media_type,
        "digest": str(Digest.of(data)),
        "size": len(data),
    } | extra


def image(media_type: str | None = mt.OCI_MANIFEST, **fields: Any) -> Document:
    document: Document = {
        "schemaVersion": 2,
        "config": desc(b"{}", CONFIG),
        "layers": [desc(b"one"), desc(b"two")],
    }
    if media_type is not None:
        document["mediaType"] = media_type
    return document | fields


def index(media_type: str | None = mt.OCI_INDEX, **fields: Any) -> Document:
    document: Document = {
        "schemaVersion": 2,
        "manifests": [
            desc(
                b"amd64",
                mt.OCI_MANIFEST,
                platform={"os": "linux", "architecture": "amd64"},
            ),
            desc(
                b"arm64",
                mt.OCI_MANIFEST,
                platform={"os": "linux", "architecture": "arm64"},
            ),
        ],
    }
    if media_type is not None:
        document["mediaType"] = media_type
    return document | fields


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def parse(document: object, content_type: str | None = None) -> Manifest:
    return parse_manifest(encode(document), content_type)


# --- the four kinds, declared, from Content-Type, or inferred -------------------------


@pytest.mark.parametrize(
    ("document", "content_type", "media_type"),
    [
        (image(), mt.OCI_MANIFEST, mt.OCI_MANIFEST),
        (image(), None, mt.OCI_MANIFEST),
        (image(None), mt.OCI_MANIFEST, mt.OCI_MANIFEST),
        (image(None), None, mt.OCI_MANIFEST),  # inferred from the shape
        (image(None), "", mt.OCI_MANIFEST),
        (image(), f"{mt.OCI_MANIFEST}; charset=utf-8", mt.OCI_MANIFEST),
        (image(), mt.OCI_MANIFEST.upper(), mt.OCI_MANIFEST),
        (image(layers=[]), None, mt.OCI_MANIFEST),
        (image(mt.DOCKER_MANIFEST), mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST),
        (image(mt.DOCKER_MANIFEST), None, mt.DOCKER_MANIFEST),
        (image(None), mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST),
    ],
)
def test_image_manifests(
    document: Document, content_type: str | None, media_type: str
) -> None:
    manifest = parse(document, content_type)
    assert manifest.media_type == media_type
    assert not manifest.is_index
    assert manifest.config is not None
    assert manifest.manifests == ()
    assert len(manifest.layers) == len(document["layers"])


@pytest.mark.parametrize(
    ("document", "content_type", "media_type"),
    [
        (index(), mt.OCI_INDEX, mt.OCI_INDEX),
        (index(), None, mt.OCI_INDEX),
        (index(None), mt.OCI_INDEX, mt.OCI_INDEX),
        (index(None), None, mt.OCI_INDEX),  # inferred from "manifests"
        (index(manifests=[]), None, mt.OCI_INDEX),
        (
            index(mt.DOCKER_MANIFEST_LIST),
            mt.DOCKER_MANIFEST_LIST,
            mt.DOCKER_MANIFEST_LIST,
        ),
        (index(None), mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST_LIST),
    ],
)
def test_indexes(document: Document, content_type: str | None, media_type: str) -> None:
    manifest = parse(document, content_type)
    assert manifest.media_type == media_type
    assert manifest.is_index
    assert manifest.config is None
    assert manifest.layers == ()
    assert len(manifest.manifests) == len(document["manifests"])
    assert manifest.blob_references == ()


def test_image_manifest_fields() -> None:
    manifest = parse(image(annotations={"org.opencontainers.image.title": "x"}))
    assert manifest.config == Descriptor(CONFIG, Digest.of(b"{}"), 2)
    assert manifest.layers == (
        Descriptor(LAYER, Digest.of(b"one"), 3),
        Descriptor(LAYER, Digest.of(b"two"), 3),
    )
    assert manifest.annotations == {"org.opencontainers.image.title": "x"}
    assert manifest.subject is None
    assert manifest.artifact_type is None
    assert manifest.blob_references == (manifest.config, *manifest.layers)


def test_index_children_keep_platform_and_annotations() -> None:
    manifest = parse(index())
    amd64, arm64 = manifest.manifests
    assert amd64.digest == Digest.of(b"amd64")
    assert amd64.media_type == mt.OCI_MANIFEST
    assert amd64.platform == {"os": "linux", "architecture": "amd64"}
    assert arm64.platform == {"os": "linux", "architecture": "arm64"}
    assert manifest.annotations == {}


def test_docker_manifest_keeps_docker_config_type() -> None:
    manifest = parse(image(mt.DOCKER_MANIFEST, config=desc(b"{}", DOCKER_CONFIG)))
    assert manifest.config is not None
    assert manifest.config.media_type == DOCKER_CONFIG
    assert manifest.referrer_artifact_type == DOCKER_CONFIG


# --- artifacts and referrers ----------------------------------------------------------


def test_artifact_manifest_with_subject() -> None:
    subject = desc(b"image", mt.OCI_MANIFEST)
    manifest = parse(
        image(
            artifactType=SBOM,
            config=desc(b"{}", mt.OCI_EMPTY),
            layers=[desc(b"sbom", SBOM)],
            subject=subject,
            annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        )
    )
    assert manifest.artifact_type == SBOM
    assert manifest.referrer_artifact_type == SBOM
    assert manifest.subject == Descriptor(mt.OCI_MANIFEST, Digest.of(b"image"), 5)
    assert manifest.annotations["org.opencontainers.image.created"]


def test_index_with_subject_and_artifact_type() -> None:
    manifest = parse(index(artifactType=SBOM, subject=desc(b"image", mt.OCI_MANIFEST)))
    assert manifest.is_index
    assert manifest.subject is not None
    assert manifest.referrer_artifact_type == SBOM


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (parse(image(artifactType=SBOM)), SBOM),  # artifactType wins
        (parse(image()), CONFIG),  # else the config media type
        (parse(image(artifactType="")), CONFIG),  # an empty artifactType is absent
        (parse(image(config=desc(b"{}", mt.OCI_EMPTY))), mt.OCI_EMPTY),
        (parse(index()), None),  # an index has no config
        (parse(index(artifactType=SBOM)), SBOM),
        (Manifest(media_type=mt.OCI_MANIFEST), None),  # no config at all
        (
            Manifest(
                media_type=mt.OCI_INDEX, config=Descriptor(CONFIG, Digest.of(b""), 0)
            ),
            None,
        ),
    ],
)
def test_referrer_artifact_type(manifest: Manifest, expected: str | None) -> None:
    assert manifest.referrer_artifact_type == expected


# --- foreign layers -------------------------------------------------------------------


def test_foreign_layers_with_urls_are_not_blob_references() -> None:
    foreign = desc(b"windows", FOREIGN, urls=["https://example.com/layer.tar.gz"])
    local = desc(b"local")
    manifest = parse(image(mt.DOCKER_MANIFEST, layers=[foreign, local]))
    assert manifest.layers[0].urls == ("https://example.com/layer.tar.gz",)
    assert [str(d.digest) for d in manifest.blob_references] == [
        str(Digest.of(b"{}")),
        local["digest"],
    ]


def test_layers_with_empty_urls_are_blob_references() -> None:
    manifest = parse(image(layers=[desc(b"a", urls=[])]))
    assert manifest.layers[0].urls == ()
    assert len(manifest.blob_references) == 2


# --- media type errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (image(), mt.OCI_INDEX),
        (index(), mt.OCI_MANIFEST),
        (image(mt.DOCKER_MANIFEST), mt.OCI_MANIFEST),
        (image(), mt.DOCKER_MANIFEST),
        (index(mt.DOCKER_MANIFEST_LIST), mt.OCI_INDEX),
        (image(), "application/json"),
    ],
)
def test_media_type_must_match_content_type(
    document: Document, content_type: str
) -> None:
    with pytest.raises(ManifestInvalid, match="does not match Content-Type"):
        parse(document, content_type)


@pytest.mark.parametrize("declared", [5, ["x"], {"a": "b"}, True])
def test_declared_media_type_must_be_a_string(declared: object) -> None:
    with pytest.raises(ManifestInvalid, match="mediaType must be a string"):
        parse(image(mediaType=declared))


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (image(None), mt.DOCKER_SCHEMA1),
        (image(None), mt.DOCKER_SCHEMA1_SIGNED),
        (image(mt.DOCKER_SCHEMA1_SIGNED), None),
        (
            {
                "schemaVersion": 1,
                "name": "x",
                "tag": "y",
                "fsLayers": [],
                "history": [],
            },
            mt.DOCKER_SCHEMA1_SIGNED,
        ),
    ],
)
def test_schema1_is_unsupported(document: Document, content_type: str | None) -> None:
    with pytest.raises(Unsupported) as caught:
        parse(document, content_type)
    assert caught.value.status == 415


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        (image(None), "application/json"),
        (image(None), "application/octet-stream"),
        (image(mt.OCI_EMPTY), None),
        (image("text/plain"), "text/plain"),
        (image("application/vnd.oci.artifact.manifest.v1+json"), None),
    ],
)
def test_unknown_media_type(document: Document, content_type: str | None) -> None:
    with pytest.raises(ManifestInvalid, match="unsupported manifest media type"):
        parse(document, content_type)


# --- documents that are not manifests -------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"{", b"\xff\xfe\xfd", b"{'single': 'quotes'}", b'{"a": 1} trailing']
)
def test_not_json(data: bytes) -> None:
    with pytest.raises(ManifestInvalid, match="not valid JSON"):
        parse_manifest(data, mt.OCI_MANIFEST)


@pytest.mark.parametrize("data", [b"[]", b"1", b"null", b'"manifest"', b"true", b"NaN"])
def test_not_an_object(data: bytes) -> None:
    with pytest.raises(ManifestInvalid, match="must be a JSON object"):
        parse_manifest(data, mt.OCI_MANIFEST)


def _nest(depth: int, *, kind: str = "array", inner: object = 1) -> object:
    value = inner
    for _ in range(depth):
        value = [value] if kind == "array" else {"k": value}
    return value


def _deep_text(depth: int, kind: str) -> bytes:
    # Built as text: json.dumps of such a value would itself hit the recursion limit.
    opening, closing = ("[", "]") if kind == "array" else ('{"k":', "}")
    return (opening * depth + "1" + closing * depth).encode()


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("where", ["top", "annotations", "unknown field", "config"])
def test_too_deep_is_invalid_without_recursing(kind: str, where: str) -> None:
    deep = _deep_text(10_000, kind)
    document = encode(image())
    if where == "top":
        data = deep
    elif where == "config":
        data = document.replace(b'"config": {', b'"config": {"x": ' + deep + b", ", 1)
    else:
        key = b"annotations" if where == "annotations" else b"x-extra"
        data = document[:-1] + b', "' + key + b'": ' + deep + b"}"
    with pytest.raises(ManifestInvalid, match="nests deeper than 64"):
        parse_manifest(data, mt.OCI_MANIFEST)


@pytest.mark.parametrize("kind", ["array", "object"])
def test_depth_limit_is_exact(kind: str) -> None:
    # The manifest object is level 1, the extra field's value adds the rest.
    fits = image(extra=_nest(MAX_MANIFEST_DEPTH - 1, kind=kind))
    assert parse(fits).media_type == mt.OCI_MANIFEST
    with pytest.raises(ManifestInvalid, match="nests deeper"):
        parse(image(extra=_nest(MAX_MANIFEST_DEPTH, kind=kind)))


def test_brackets_inside_strings_do_not_count() -> None:
    text = '[[{"\\"}]' * 200 + '"[{'
    many = {f"k{i}": text for i in range(50)}
    assert parse(image(annotations=many)).annotations == many


def test_many_shallow_children_are_not_deep() -> None:
    children = [
        desc(str(i).encode(), mt.OCI_MANIFEST, platform={"os": "linux"})
        for i in range(500)
    ]
    assert len(parse(index(manifests=children)).manifests) == 500


def test_unterminated_string_before_deep_brackets_is_invalid() -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(b'{"a": "' + b"[" * 10_000, mt.OCI_MANIFEST)


@pytest.mark.parametrize(
    "data",
    [
        b'{"schemaVersion": 2, "schemaVersion": 2}',
        b'{"schemaVersion": 2, "mediaType": "a", "mediaType": "'
        + mt.OCI_MANIFEST.encode()
        + b'"}',
        encode(image())[:-1] + b', "layers": []}',
        encode(image()).replace(b'"size": 2', b'"size": 2, "size": 3', 1),
        encode(image(annotations={"a": "1"})).replace(
            b'"a": "1"', b'"a": "1", "a": "2"'
        ),
        encode(image(extra={"x": {"y": 1}})).replace(b'"y": 1', b'"y": 1, "y": 1'),
    ],
    ids=["top", "mediaType", "layers", "descriptor", "annotations", "unknown field"],
)
def test_duplicate_keys_are_invalid(data: bytes) -> None:
    with pytest.raises(ManifestInvalid, match="duplicate key"):
        parse_manifest(data, None)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_only_utf8_without_bom(encoding: str) -> None:
    data = encode(image()).decode().encode(encoding)
    with pytest.raises(ManifestInvalid, match="not valid JSON"):
        parse_manifest(data, mt.OCI_MANIFEST)


def _without(document: Document, key: str) -> Document:
    return {k: v for k, v in document.items() if k != key}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (_without(image(), "schemaVersion"), "schemaVersion must be 2"),
        (image(schemaVersion=1), "schemaVersion must be 2"),
        (image(schemaVersion=3), "schemaVersion must be 2"),
        (image(schemaVersion="2"), "schemaVersion must be 2"),
        (image(schemaVersion=True), "schemaVersion must be 2"),
        (image(artifactType=5), "artifactType must be a string"),
        (image(artifactType={"a": "b"}), "artifactType must be a string"),
        (image(annotations={"a": 1}), "annotations must map strings to strings"),
        (image(annotations=["a"]), "annotations must map strings to strings"),
        (image(annotations="a=b"), "annotations must map strings to strings"),
        (image(subject="sha256:abc"), "subject: descriptor must be an object"),
        (image(subject=[]), "subject: descriptor must be an object"),
        (_without(image(), "config"), "needs a config descriptor"),
        (image(config=None), "config: descriptor must be an object"),
        (_without(image(), "layers"), "needs a layers list"),
        (image(layers={}), "needs a layers list"),
        (image(layers=None), "needs a layers list"),
        (_without(index(), "manifests"), "needs a manifests list"),
        (index(manifests={}), "needs a manifests list"),
        (index(manifests=None), "needs a manifests list"),
        (image(None, manifests={}), "needs a manifests list"),  # inferred as an index
    ],
)
def test_wrong_shape(document: Document, problem: str) -> None:
    with pytest.raises(ManifestInvalid, match=problem):
        parse(document)


# --- descriptors ----------------------------------------------------------------------

BAD_DESCRIPTORS: list[tuple[object, str]] = [
    ("sha256:abc", "descriptor must be an object"),
    ([], "descriptor must be an object"),
    (_without(desc(), "mediaType"), "mediaType must be a non-empty string"),
    (desc(mediaType=""), "mediaType must be a non-empty string"),
    (desc(mediaType=5), "mediaType must be a non-empty string"),
    (_without(desc(), "digest"), "digest must be a string"),
    (desc(digest=5), "digest must be a string"),
    (desc(digest=None), "digest must be a string"),
    (desc(digest="sha256:abc"), "malformed sha256 digest"),
    (desc(digest="sha256:" + "A" * 64), "malformed sha256 digest"),
    (desc(digest="md5:" + "a" * 32), "unsupported digest algorithm"),
    (desc(digest="not a digest"), "malformed digest"),
    (_without(desc(), "size"), "size must be a non-negative integer"),
    (desc(size=-1), "size must be a non-negative integer"),
    (desc(size=1.5), "size must be a non-negative integer"),
    (desc(size="5"), "size must be a non-negative integer"),
    (desc(size=True), "size must be a non-negative integer"),
    (desc(size=None), "size must be a non-negative integer"),
    (desc(urls="https://example.com/x"), "urls must be a list of strings"),
    (desc(urls=[1]), "urls must be a list of strings"),
    (desc(urls=["https://a", None]), "urls must be a list of strings"),
    (desc(urls={"a": "b"}), "urls must be a list of strings"),
    (desc(annotations=["a"]), "annotations must map strings to strings"),
    (desc(annotations={"a": 1}), "annotations must map strings to strings"),
    (desc(annotations="a=b"), "annotations must map strings to strings"),
    (desc(artifactType=5), "artifactType must be a string"),
    (desc(platform="linux/amd64"), "platform must be an object"),
    (desc(platform=["linux"]), "platform must be an object"),
]


def _place(where: str, descriptor: object) -> Document:
    if where == "config":
        return image(config=descriptor)
    if where == "layers[1]":
        return image(layers=[desc(), descriptor])
    if where == "manifests[0]":
        return index(manifests=[descriptor])
    return image(subject=descriptor)


@pytest.mark.parametrize("where", ["config", "layers[1]", "manifests[0]", "subject"])
@pytest.mark.parametrize(("descriptor", "problem"), BAD_DESCRIPTORS)
def test_bad_descriptor(where: str, descriptor: object, problem: str) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse(_place(where, descriptor))
    assert caught.value.detail.startswith(f"{where}: ")
    assert problem in caught.value.detail


def test_bad_descriptor_digest_chains_the_digest_error() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse(image(config=desc(digest="sha256:abc")))
    assert isinstance(caught.value.__cause__, DigestInvalid)


@pytest.mark.parametrize(
    "descriptor",
    [
        desc(size=0),
        desc(size=2**63),
        desc(digest=str(Digest.of(b"layer", "sha512"))),
        desc(annotations={}),
        desc(annotations={"a": "b"}),
        desc(urls=None),
        desc(artifactType=SBOM),
        desc(platform={}),
        desc(unknownField={"ignored": True}),
    ],
)
def test_good_descriptor_variants(descriptor: Document) -> None:
    manifest = parse(image(layers=[descriptor]))
    assert manifest.layers[0].size == descriptor["size"]


# --- Descriptor.to_json ---------------------------------------------------------------


def test_descriptor_to_json_minimal() -> None:
    digest = Digest.of(b"x")
    assert Descriptor(LAYER, digest, 1).to_json() == {
        "mediaType": LAYER,
        "digest": str(digest),
        "size": 1,
    }


def test_descriptor_to_json_full_omits_urls_and_platform() -> None:
    digest = Digest.of(b"x")
    descriptor = Descriptor(
        mt.OCI_MANIFEST,
        digest,
        1,
        artifact_type=SBOM,
        annotations={"a": "b"},
        urls=("https://example.com",),
        platform={"os": "linux"},
    )
    assert descriptor.to_json() == {
        "mediaType": mt.OCI_MANIFEST,
        "digest": str(digest),
        "size": 1,
        "artifactType": SBOM,
        "annotations": {"a": "b"},
    }


def test_descriptor_to_json_omits_empty_values() -> None:
    descriptor = Descriptor(LAYER, Digest.of(b""), 0, artifact_type="", annotations={})
    assert set(descriptor.to_json()) == {"mediaType", "digest", "size"}


def test_descriptor_round_trips_through_a_manifest() -> None:
    original = desc(b"sbom", SBOM, artifactType=SBOM, annotations={"k": "v"})
    manifest = parse(index(manifests=[original]))
    assert manifest.manifests[0].to_json() == original


def test_manifest_defaults_are_not_shared() -> None:
    first, second = Manifest(mt.OCI_MANIFEST), Manifest(mt.OCI_MANIFEST)
    assert first.annotations == {}
    assert first.annotations is not second.annotations
