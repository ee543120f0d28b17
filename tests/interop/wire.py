"""A small OCI Distribution client over httpx, used to seed and check the registry.

Owns: pushing layout images (monolithic POST + PUT uploads), reading manifests,
blobs, tags and referrers. The interop tests use it to set up state without
depending on a second client tool, and to look at what a client tool left behind.

Must not: hide status codes. Each helper asserts the one the spec requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from .layouts import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    MultiArch,
    layout_blob,
)

if TYPE_CHECKING:
    from pathlib import Path

ACCEPT_ALL = f"{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}, {DOCKER_MANIFEST_LIST}"


@dataclass(frozen=True, slots=True)
class Fetched:
    body: bytes
    media_type: str
    digest: str | None


class RegistryHTTP:
    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=120.0)

    def close(self) -> None:
        self.client.close()

    def push_blob(self, repo: str, data: bytes, digest: str) -> None:
        started = self.client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        # httpx's params= would replace the query the registry put in Location.
        location = httpx.URL(started.headers["Location"])
        done = self.client.put(
            location.copy_add_param("digest", digest),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text

    def push_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        response = self.client.put(
            f"/v2/{repo}/manifests/{ref}",
            content=body,
            headers={"Content-Type": media_type},
        )
        assert response.status_code == 201, response.text
        return response.headers["Docker-Content-Digest"]

    def push_image(self, repo: str, layout: Path, image: Image, tag: str) -> str:
        for blob in (image.config, *image.layers):
            self.push_blob(repo, layout_blob(layout, blob.digest), blob.digest)
        body = layout_blob(layout, image.manifest.digest)
        return self.push_manifest(repo, tag, body, image.manifest.media_type)

    def push_multi_arch(
        self, repo: str, layout: Path, multi: MultiArch, tag: str
    ) -> str:
        for child in multi.children.values():
            self.push_image(repo, layout, child, child.manifest.digest)
        body = layout_blob(layout, multi.index.digest)
        return self.push_manifest(repo, tag, body, multi.index.media_type)

    def manifest(
        self, repo: str, ref: str, *, accept: str = ACCEPT_ALL
    ) -> httpx.Response:
        return self.client.get(
            f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept}
        )

    def fetch_manifest(
        self, repo: str, ref: str, *, accept: str = ACCEPT_ALL
    ) -> Fetched:
        response = self.manifest(repo, ref, accept=accept)
        assert response.status_code == 200, response.text
        return Fetched(
            response.content,
            response.headers["Content-Type"].split(";")[0].strip(),
            response.headers.get("Docker-Content-Digest"),
        )

    def fetch_blob(self, repo: str, digest: str) -> bytes:
        response = self.client.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
        assert response.status_code == 200, response.text
        return response.content

    def fetch_json(self, repo: str, digest: str) -> Any:
        return httpx.Response(200, content=self.fetch_blob(repo, digest)).json()

    def tags(self, repo: str) -> list[str]:
        response = self.client.get(f"/v2/{repo}/tags/list")
        assert response.status_code == 200, response.text
        return list(response.json()["tags"] or [])

    def referrers(
        self, repo: str, digest: str, *, artifact_type: str | None = None
    ) -> httpx.Response:
        params = {"artifactType": artifact_type} if artifact_type else None
        return self.client.get(f"/v2/{repo}/referrers/{digest}", params=params)
