"""Image layers and images built in tests from files on this machine or written here.

``layer`` makes a tar (plain, gzip or zstd) from ``{path: bytes}`` (``None``: a
directory), whiteouts being plain entries named ``.wh.<name>``; ``image`` makes the
config and manifest of an OCI image over such layers.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass

import zstandard

from cargohold.oci.digest import Digest


def layer(files: dict[str, bytes | None], *, compression: str = "gzip") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.mtime = 0
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            info.size = len(content)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(content))
    raw = buffer.getvalue()
    match compression:
        case "gzip":
            return gzip.compress(raw, mtime=0)
        case "zstd":
            return zstandard.ZstdCompressor().compress(raw)
        case _:
            return raw


LAYER_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}


@dataclass(frozen=True, slots=True)
class Image:
    config: bytes
    layers: list[bytes]
    manifest: bytes

    @property
    def digest(self) -> str:
        return str(Digest.of(self.manifest))

    @property
    def blobs(self) -> list[bytes]:
        return [self.config, *self.layers]


def image(
    layers: list[bytes],
    *,
    compressions: list[str] | None = None,
    labels: dict[str, str] | None = None,
    architecture: str = "amd64",
) -> Image:
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "created": "2026-01-02T03:04:05Z",
            "config": {"Labels": labels or {}},
            "rootfs": {"type": "layers", "diff_ids": []},
        },
        sort_keys=True,
    ).encode()
    kinds = compressions or ["gzip"] * len(layers)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(Digest.of(config)),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": LAYER_TYPES[kind],
                    "digest": str(Digest.of(data)),
                    "size": len(data),
                }
                for data, kind in zip(layers, kinds, strict=True)
            ],
        },
        sort_keys=True,
    ).encode()
    return Image(config, layers, manifest)


def go_buildinfo(version: str, modinfo: str) -> bytes:
    """An ELF-looking file holding a Go 1.18+ ``.go.buildinfo`` section."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            if n:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                return bytes(out)

    sentinel = b"0123456789abcdef"
    info = sentinel + modinfo.encode() + b"\n" + b"fedcba987654321" + b"x"
    # A decoy: the magic as a string constant, not aligned, not a header.
    decoy = b"\x00" * 3 + b"\xff Go buildinf:" + b"hello"
    body = b"\x7fELF" + b"\x00" * 4092 + decoy
    body += b"\x00" * (-len(body) % 16)
    header = b"\xff Go buildinf:" + bytes([8, 2]) + b"\x00" * 16
    version_bytes = version.encode()
    body += header + varint(len(version_bytes)) + version_bytes
    body += varint(len(info)) + info + b"\x00" * 100
    return body
