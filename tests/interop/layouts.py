"""Build OCI image layouts on disk, with no network and no client tools.

Owns: deterministic tar+gzip layers, image configs, manifests, indexes and the
``index.json`` of an OCI image layout (image-spec ``image-layout.md``). The interop
tests feed these layouts to real clients (``skopeo copy oci:DIR:TAG ...``) and compare
what comes back against the digests recorded here.

Must not: start processes or talk HTTP (see ``wire.py`` for that).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"

EPOCH = "1970-01-01T00:00:00Z"
_CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Serialise the way the tests store manifests: sorted keys, no spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.platform is not None:
            out["platform"] = self.platform
        if self.annotations is not None:
            out["annotations"] = self.annotations
        return out


@dataclass(frozen=True, slots=True)
class Image:
    """One single-platform image written into a layout."""

    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[str, ...]
    files: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class MultiArch:
    index: Descriptor
    children: dict[str, Image]


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """A reproducible tar: fixed mtime, owner and mode, entries in sorted order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def read_layer(blob: bytes) -> dict[str, bytes]:
    """The regular files of a (possibly gzipped) tar layer, by normalised name."""
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                out[member.name.removeprefix("./").lstrip("/")] = extracted.read()
    return out


@dataclass
class LayoutWriter:
    """Writes blobs into ``root`` and records tagged manifests for ``index.json``."""

    root: Path
    _refs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        return self.root / "blobs" / algo / hexpart

    def add_blob(self, data: bytes, media_type: str) -> Descriptor:
        digest = sha256_digest(data)
        self.blob_path(digest).write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def add_json(self, obj: Any, media_type: str) -> Descriptor:
        return self.add_blob(canonical_json(obj), media_type)

    def add_image(
        self,
        files: dict[str, bytes],
        *,
        arch: str = "amd64",
        extra_layers: tuple[tuple[Descriptor, str], ...] = (),
    ) -> Image:
        """Write one image: a layer from ``files`` plus prepared (layer, diff_id)s."""
        raw = tar_bytes(files)
        first = self.add_blob(gzip_bytes(raw), OCI_LAYER_GZIP)
        layers = (first, *(layer for layer, _ in extra_layers))
        diff_ids = (sha256_digest(raw), *(diff for _, diff in extra_layers))
        config = self.add_json(
            {
                "created": EPOCH,
                "architecture": arch,
                "os": "linux",
                "config": {"Env": ["PATH=/bin"], "Labels": {"cargohold.test": arch}},
                "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
                "history": [
                    {"created": EPOCH, "created_by": "cargohold interop"}
                    for _ in layers
                ],
            },
            OCI_CONFIG,
        )
        manifest = self.add_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.to_json(),
                "layers": [layer.to_json() for layer in layers],
            },
            OCI_MANIFEST,
        )
        return Image(manifest, config, layers, diff_ids, dict(files))

    def add_multi_arch(self, files_by_arch: dict[str, dict[str, bytes]]) -> MultiArch:
        children = {
            arch: self.add_image(files, arch=arch)
            for arch, files in files_by_arch.items()
        }
        index = self.add_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    Descriptor(
                        OCI_MANIFEST,
                        child.manifest.digest,
                        child.manifest.size,
                        platform={"architecture": arch, "os": "linux"},
                    ).to_json()
                    for arch, child in children.items()
                ],
            },
            OCI_INDEX,
        )
        return MultiArch(index, children)

    def add_random_layer(self, name: str, size: int) -> tuple[Descriptor, str]:
        """Stream a layer holding ``size`` random bytes; returns (layer, diff_id).

        Random data does not compress, so the gzip blob is a little over ``size``.
        """
        tmp = self.root / "blobs" / "sha256" / "incoming"
        raw_hash = hashlib.sha256()
        with tmp.open("wb") as out:
            hashing = _HashingWriter(out)
            with gzip.GzipFile(
                fileobj=hashing, mode="wb", compresslevel=1, mtime=0
            ) as gz:
                raw = _HashingWriter(gz, raw_hash)
                with tarfile.open(
                    fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT
                ) as tar:
                    info = tarfile.TarInfo(name)
                    info.size = size
                    info.mode = 0o644
                    tar.addfile(info, _RandomReader(size))
        digest = "sha256:" + hashing.hash.hexdigest()
        tmp.rename(self.blob_path(digest))
        layer = Descriptor(OCI_LAYER_GZIP, digest, hashing.count)
        return layer, "sha256:" + raw_hash.hexdigest()

    def tag(self, descriptor: Descriptor, name: str) -> None:
        entry = descriptor.to_json()
        entry["annotations"] = {REF_NAME: name}
        self._refs.append(entry)

    def close(self) -> None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self._refs}
        (self.root / "index.json").write_bytes(canonical_json(index))


class _HashingWriter(io.RawIOBase):
    """Passes writes on to ``target`` while hashing and counting them."""

    def __init__(self, target: Any, hasher: Any = None) -> None:
        super().__init__()
        self.target = target
        self.hash = hasher if hasher is not None else hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.hash.update(data)
        self.count += len(data)
        self.target.write(data)
        return len(data)


class _RandomReader(io.RawIOBase):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left, _CHUNK)
        self.left -= n
        return os.urandom(n)


def read_layout_index(root: Path) -> dict[str, Descriptor]:
    """Tagged descriptors of a layout's ``index.json``, by ref name."""
    index = json.loads((root / "index.json").read_text())
    out: dict[str, Descriptor] = {}
    for entry in index["manifests"]:
        name = (entry.get("annotations") or {}).get(REF_NAME, entry["digest"])
        out[name] = Descriptor(entry["mediaType"], entry["digest"], entry["size"])
    return out


def layout_blob(root: Path, digest: str) -> bytes:
    algo, _, hexpart = digest.partition(":")
    return (root / "blobs" / algo / hexpart).read_bytes()
