"""Seed data, pushed through each registry's own HTTP API, and checks that each
registry serves it correctly before anything is timed."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
from http1 import location_target, with_query
from servers import BenchError

if TYPE_CHECKING:
    from servers import RunningServer

REPO = "bench/app"
TAG_COUNT = 1000
BIG_BLOB_SIZE = 64 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# What docker and containerd send when pulling by tag.
MANIFEST_MEDIA_TYPES = (
    OCI_MANIFEST,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


def sha256_digest(data: bytes | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_query(digest: str) -> str:
    return quote(digest, safe="")


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True, slots=True)
class SeedContent:
    """The same content for every registry, so digests match across them."""

    config: bytes
    small_layers: tuple[bytes, ...]
    big_blob: bytes
    manifests: tuple[bytes, ...]  # manifests[i] is tagged tags[i]
    tags: tuple[str, ...]

    @property
    def blobs(self) -> tuple[tuple[str, bytes], ...]:
        layers = (*self.small_layers, self.big_blob)
        return ((OCI_CONFIG, self.config), *((OCI_LAYER, data) for data in layers))

    @property
    def blob_digests(self) -> tuple[str, ...]:
        return tuple(sha256_digest(data) for _, data in self.blobs)

    @property
    def big_blob_digest(self) -> str:
        return sha256_digest(self.big_blob)


def make_content(tag_count: int = TAG_COUNT) -> SeedContent:
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    small_layers = tuple(os.urandom(size) for size in (4 << 10, 64 << 10, 1 << 20))
    big_blob = os.urandom(BIG_BLOB_SIZE)
    layers = [
        Descriptor(OCI_LAYER, sha256_digest(data), len(data)).to_json()
        for data in (*small_layers, big_blob)
    ]
    config_descriptor = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
    tags = tuple(f"t{index:04d}" for index in range(tag_count))
    # One distinct manifest per tag (differing in an annotation), so a server's
    # manifest cache sees as many entries as there are tags.
    manifests = tuple(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config_descriptor.to_json(),
                "layers": layers,
                "annotations": {"org.example.bench.tag": tag},
            },
            indent=3,
        ).encode()
        for tag in tags
    )
    return SeedContent(config, small_layers, big_blob, manifests, tags)


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = sha256_digest(data)
    start = client.post(f"/v2/{repo}/blobs/uploads/")
    _expect(start, 202, "POST blob upload")
    target = with_query(
        location_target(start.headers["location"]), "digest", digest_query(digest)
    )
    done = client.put(
        target, content=data, headers={"Content-Type": "application/octet-stream"}
    )
    _expect(done, 201, "PUT blob upload")
    return digest


def seed(server: RunningServer, content: SeedContent) -> None:
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        for _, data in content.blobs:
            push_blob(client, REPO, data)
        for tag, manifest in zip(content.tags, content.manifests, strict=True):
            response = client.put(
                f"/v2/{REPO}/manifests/{tag}",
                content=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            _expect(response, 201, f"PUT manifest {tag}")


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """What the checks found out about a server's behaviour."""

    tags_listed_default: int  # tags in GET tags/list without ?n=
    tags_listed_n1000: int
    single_post_upload: bool  # POST ?digest= with the body answered 201


def check(server: RunningServer, content: SeedContent) -> ServerFacts:
    """Fail unless the server answers every timed request correctly."""
    accept = {"Accept": MANIFEST_ACCEPT}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        for index in (0, len(content.tags) - 1):
            path = f"/v2/{REPO}/manifests/{content.tags[index]}"
            expected = sha256_digest(content.manifests[index])
            got = client.get(path, headers=accept)
            _expect(got, 200, f"GET {path}")
            if got.content != content.manifests[index]:
                raise BenchError(f"{server.label}: GET {path} returned other bytes")
            if got.headers.get("docker-content-digest") != expected:
                raise BenchError(f"{server.label}: GET {path}: wrong digest header")
            head = client.head(path, headers=accept)
            _expect(head, 200, f"HEAD {path}")
        for digest in content.blob_digests:
            _expect(client.head(f"/v2/{REPO}/blobs/{digest}"), 200, "HEAD blob")
        big = client.get(f"/v2/{REPO}/blobs/{content.big_blob_digest}")
        _expect(big, 200, "GET big blob")
        if sha256_digest(big.content) != content.big_blob_digest:
            raise BenchError(f"{server.label}: big blob came back corrupted")
        listed = {}
        for query in ("", "?n=1000"):
            tags = client.get(f"/v2/{REPO}/tags/list{query}")
            _expect(tags, 200, f"GET tags/list{query}")
            listed[query] = len(tags.json().get("tags") or [])
        return ServerFacts(
            tags_listed_default=listed[""],
            tags_listed_n1000=listed["?n=1000"],
            single_post_upload=_supports_single_post(client),
        )


def _supports_single_post(client: httpx.Client) -> bool:
    data = os.urandom(1024)
    digest = sha256_digest(data)
    response = client.post(
        f"/v2/{REPO}/blobs/uploads/?digest={digest_query(digest)}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    if response.status_code == 201:
        return True
    _expect(response, 202, "POST ?digest=")
    # The registry opened a session instead (OCI allows it): cancel it.
    client.delete(location_target(response.headers["location"]))
    return False


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise BenchError(
            f"{what} on {response.request.url}: expected {status}, got "
            f"{response.status_code}: {response.text[:300]}"
        )
