"""Small push helpers over the /v2 API for integration tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def descriptor(data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": digest_of(data),
        "size": len(data),
    } | extra


async def push_blob(client: httpx.AsyncClient, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    response = await client.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data
    )
    assert response.status_code == 201, response.text
    return digest


def image_manifest(
    config: bytes, layers: list[bytes], *, media_type: str = OCI_MANIFEST, **extra: Any
) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config, CONFIG),
        "layers": [descriptor(layer, LAYER) for layer in layers],
    } | extra
    return json.dumps(document).encode()


async def push_image(
    client: httpx.AsyncClient, repo: str, tag: str, *, seed: str = "x", **extra: Any
) -> tuple[str, bytes]:
    """Push a config, one layer and a manifest; returns (manifest digest, bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer-{seed}".encode() * 100
    await push_blob(client, repo, config)
    await push_blob(client, repo, layer)
    manifest = image_manifest(config, [layer], **extra)
    response = await client.put(
        f"/v2/{repo}/manifests/{tag}",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"], manifest


def push_image_to(
    client: httpx.Client,
    repo: str,
    tag: str,
    *,
    seed: str = "x",
    headers: dict[str, str] | None = None,
) -> str:
    """``push_image`` for a synchronous client (a server in another process);
    ``headers`` carry the credentials. Returns the manifest digest."""
    headers = headers or {}
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer-{seed}".encode() * 100
    for blob in (config, layer):
        response = client.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": digest_of(blob)},
            content=blob,
            headers=headers,
        )
        assert response.status_code == 201, response.text
    response = client.put(
        f"/v2/{repo}/manifests/{tag}",
        content=image_manifest(config, [layer]),
        headers=headers | {"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["errors"], list)
    assert body["errors"][0]["code"] == code
    assert isinstance(body["errors"][0]["message"], str)
