"""A small synchronous registry client over httpx for the cluster tests.

It speaks the distribution API as clients do (token auth, monolithic or chunked blob
uploads, manifest PUT) and records which replica answered each request
(``X-Cargohold-Replica``). Errors raise ``PushFailed`` so callers can retry a step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REPLICA = "x-cargohold-replica"


class PushFailed(Exception):
    """A request failed (a dead replica, a 5xx, a refused step); retry the step."""


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SampleImage:
    config: bytes
    layers: tuple[bytes, ...]

    @property
    def manifest(self) -> bytes:
        def descriptor(media_type: str, data: bytes) -> dict[str, object]:
            return {
                "mediaType": media_type,
                "digest": digest_of(data),
                "size": len(data),
            }

        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, self.config),
                "layers": [descriptor(OCI_LAYER, layer) for layer in self.layers],
            },
            sort_keys=True,
        ).encode()

    @property
    def blobs(self) -> tuple[bytes, ...]:
        return (self.config, *self.layers)


def make_image(seed: str, layer_bytes: int) -> SampleImage:
    """A unique image: a config naming ``seed`` and one layer of pseudo-random bytes."""
    layer = b"".join(
        hashlib.sha256(f"{seed}:{n}".encode()).digest()
        for n in range(-(-layer_bytes // 32))
    )[:layer_bytes]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "cargohold.test": seed}
    ).encode()
    return SampleImage(config, (layer,))


@dataclass
class RegistryClient:
    base: str
    auth: tuple[str, str]
    timeout: float = 60.0
    replicas: list[str] = field(default_factory=list)  # who answered, in order
    _tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=self.timeout)

    def close(self) -> None:
        self.http.close()

    def token(self, scope: str, *, fresh: bool = False) -> str:
        if fresh or scope not in self._tokens:
            answer = self._send(
                "GET",
                "/token",
                params={"service": "cargohold", "scope": scope},
                auth=self.auth,
            )
            self._check(answer, 200)
            self._tokens[scope] = str(answer.json()["token"])
        return self._tokens[scope]

    def request(
        self,
        method: str,
        path: str,
        repo: str,
        actions: str = "pull,push",
        **kw: object,
    ) -> httpx.Response:
        token = self.token(f"repository:{repo}:{actions}")
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}  # type: ignore[dict-item]
        return self._send(method, path, headers=headers, **kw)

    def _send(self, method: str, path: str, **kw: object) -> httpx.Response:
        try:
            answer = self.http.request(method, path, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise PushFailed(f"{method} {path}: {exc!r}") from exc
        self.replicas.append(answer.headers.get(REPLICA, "?"))
        return answer

    @staticmethod
    def _check(answer: httpx.Response, *wanted: int) -> None:
        if answer.status_code not in wanted:
            raise PushFailed(
                f"{answer.request.method} {answer.request.url.path}: "
                f"{answer.status_code} {answer.text[:300]}"
            )

    # -- pushing ----------------------------------------------------------------------

    def start_upload(self, repo: str) -> str:
        answer = self.request("POST", f"/v2/{repo}/blobs/uploads/", repo)
        self._check(answer, 202)
        return answer.headers["location"]

    def push_blob(self, repo: str, data: bytes, *, chunks: int = 1) -> str:
        """Upload ``data`` in ``chunks`` PATCHes (then a PUT); returns the digest."""
        digest = digest_of(data)
        location = self.start_upload(repo)
        step = -(-len(data) // chunks) if data else 0
        offset = 0
        while offset < len(data) and chunks > 1:
            piece = data[offset : offset + step]
            answer = self.request(
                "PATCH",
                location,
                repo,
                content=piece,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(piece) - 1}",
                },
            )
            self._check(answer, 202)
            location = answer.headers["location"]
            offset += len(piece)
        rest = data[offset:]
        separator = "&" if "?" in location else "?"
        answer = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            repo,
            content=rest,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._check(answer, 201)
        return digest

    def put_manifest(self, repo: str, tag: str, manifest: bytes) -> httpx.Response:
        answer = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            repo,
            content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        self._check(answer, 201)
        return answer

    def push_image(
        self, repo: str, tag: str, image: SampleImage, *, chunks: int = 1
    ) -> None:
        for blob in image.blobs:
            self.push_blob(repo, blob, chunks=chunks)
        self.put_manifest(repo, tag, image.manifest)

    # -- pulling ----------------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str) -> bytes:
        answer = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            repo,
            "pull",
            headers={"Accept": OCI_MANIFEST},
        )
        self._check(answer, 200)
        return answer.content

    def get_blob(self, repo: str, digest: str) -> bytes:
        answer = self.request("GET", f"/v2/{repo}/blobs/{digest}", repo, "pull")
        self._check(answer, 200)
        return answer.content

    def pull_image(self, repo: str, tag: str) -> SampleImage:
        """The image under ``tag``, every blob checked against its digest."""
        manifest = json.loads(self.get_manifest(repo, tag))
        blobs = []
        for descriptor in (manifest["config"], *manifest["layers"]):
            data = self.get_blob(repo, descriptor["digest"])
            assert digest_of(data) == descriptor["digest"]
            assert len(data) == descriptor["size"]
            blobs.append(data)
        return SampleImage(blobs[0], tuple(blobs[1:]))
