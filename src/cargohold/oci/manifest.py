"""Parsing and validating manifests.

Specs: image-spec manifest.md, image-index.md; Docker v2.2.

``parse_manifest`` checks what can be checked from the bytes alone. Whether the
referenced blobs and child manifests exist is the registry service's job.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from cargohold.oci import mediatypes
from cargohold.oci.digest import Digest
from cargohold.oci.errors import DigestInvalid, ManifestInvalid, Unsupported

# Deepest nesting of arrays and objects accepted. A real manifest nests 5 levels
# (index > manifests > descriptor > platform > os.features); json.loads recurses once
# per level and fails with RecursionError near 1,000, so the limit is checked first.
MAX_MANIFEST_DEPTH = 64

# JSON strings are removed whole first, so brackets inside them do not count.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    urls: tuple[str, ...] = ()
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed manifest or index; the raw bytes stay the source of truth."""

    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in mediatypes.INDEXES

    @property
    def blob_references(self) -> tuple[Descriptor, ...]:
        """Config and layers the registry must hold.

        Foreign layers with URLs excepted.
        """
        blobs = ((self.config,) if self.config else ()) + self.layers
        return tuple(d for d in blobs if not d.urls)

    @property
    def referrer_artifact_type(self) -> str | None:
        """The ``artifactType`` a referrers listing shows for this manifest.

        See spec.md.
        """
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and not self.is_index:
            return self.config.media_type
        return None


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where}: descriptor must be an object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}: mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}: digest must be a string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}: size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}: {exc.detail}") from exc
    urls = value.get("urls") or ()
    annotations = value.get("annotations")
    artifact_type = value.get("artifactType")
    platform = value.get("platform")
    if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
        raise ManifestInvalid(f"{where}: urls must be a list of strings")
    if annotations is not None and not _string_map(annotations):
        raise ManifestInvalid(f"{where}: annotations must map strings to strings")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid(f"{where}: artifactType must be a string")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestInvalid(f"{where}: platform must be an object")
    return Descriptor(
        media_type=media_type,
        digest=parsed,
        size=size,
        artifact_type=artifact_type,
        annotations=annotations,
        urls=tuple(urls),
        platform=platform,
    )


def _string_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _media_type(document: dict[str, Any], content_type: str) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    if declared and content_type and declared != content_type:
        raise ManifestInvalid(
            f"mediaType {declared!r} does not match Content-Type {content_type!r}"
        )
    media_type = declared or content_type
    if not media_type:
        # OCI lets mediaType be omitted; infer it from the shape.
        media_type = (
            mediatypes.OCI_INDEX if "manifests" in document else mediatypes.OCI_MANIFEST
        )
    if media_type in mediatypes.LEGACY:
        raise Unsupported("Docker schema 1 manifests are not supported; push schema 2")
    if media_type not in mediatypes.MANIFESTS:
        raise ManifestInvalid(f"unsupported manifest media type: {media_type[:200]!r}")
    return media_type


def _too_deep(text: str) -> bool:
    """Whether arrays and objects nest deeper than ``MAX_MANIFEST_DEPTH``; O(n).

    Counts as the JSON parser does on every valid prefix of ``text``, which is all the
    parser recurses into before it stops at an error.
    """
    if text.count("[") + text.count("{") <= MAX_MANIFEST_DEPTH:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depths = accumulate(map(_DEPTH_STEP.__getitem__, brackets))
    return max(depths, default=0) > MAX_MANIFEST_DEPTH


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 leaves duplicate names to the parser: some keep the first, json the
    # last. Two readers of one manifest must not see different layers, so refuse.
    document = dict(pairs)
    if len(document) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        duplicate = next(key for key, count in counts.items() if count > 1)
        raise ManifestInvalid(f"duplicate key {duplicate[:100]!r}")
    return document


def _load(data: bytes) -> object:
    try:
        # UTF-8 only (RFC 8259 section 8.1); json.loads would also guess UTF-16/32.
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from exc
    if _too_deep(text):
        raise ManifestInvalid(
            f"manifest nests deeper than {MAX_MANIFEST_DEPTH} arrays or objects"
        )
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from exc


def parse_manifest(data: bytes, content_type: str | None) -> Manifest:
    """Parse and validate ``data`` pushed with ``content_type``.

    Raises:
        ManifestInvalid: not UTF-8 JSON, nested deeper than ``MAX_MANIFEST_DEPTH``,
            a duplicate key, wrong shape, or inconsistent media type.
        Unsupported: a Docker schema 1 manifest.
    """
    document = _load(data)
    if not isinstance(document, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    media_type = _media_type(document, mediatypes.base(content_type))
    if document.get("schemaVersion") != 2:  # noqa: PLR2004 - the only version there is
        raise ManifestInvalid("schemaVersion must be 2")
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    annotations = document.get("annotations") or {}
    if not _string_map(annotations):
        raise ManifestInvalid("annotations must map strings to strings")
    subject_raw = document.get("subject")
    subject = _descriptor(subject_raw, "subject") if subject_raw is not None else None

    if media_type in mediatypes.INDEXES:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("an index needs a manifests list")
        return Manifest(
            media_type=media_type,
            manifests=tuple(
                _descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)
            ),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )

    layers = document.get("layers")
    if "config" not in document:
        raise ManifestInvalid("an image manifest needs a config descriptor")
    if not isinstance(layers, list):
        raise ManifestInvalid("an image manifest needs a layers list")
    return Manifest(
        media_type=media_type,
        config=_descriptor(document["config"], "config"),
        layers=tuple(
            _descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)
        ),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )
