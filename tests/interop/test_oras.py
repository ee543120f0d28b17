"""oras-py: artifacts with custom types, chunked uploads, referrers, tag listing."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.prerequisites import skip_or_fail

from .layouts import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, sha256_digest

if TYPE_CHECKING:
    from .conftest import Layout
    from .servers import RegistryServer
    from .wire import RegistryHTTP

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

DOCS_CONFIG = "application/vnd.example.docs.config.v1+json"
DOCS_LAYER = "application/vnd.example.docs.layer.v1+text"
SBOM_CONFIG = "application/vnd.example.sbom.v1+json"
SIGNATURE = "application/vnd.example.signature.v1"
TAGS = ("v2", "latest", "1.0", "beta", "v10")


@dataclasses.dataclass(frozen=True, slots=True)
class Oras:
    """An oras-py client for the registry under test."""

    client: Any
    host: str

    def ref(self, repo: str, tag: str | None = None) -> str:
        return f"{self.host}/{repo}:{tag}" if tag else f"{self.host}/{repo}"


@pytest.fixture
def oras(registry: RegistryServer) -> Oras:
    try:
        import oras.client  # type: ignore[import-untyped]
    except ImportError:
        skip_or_fail("the oras package is not installed: pip install -e '.[test]'")
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    return Oras(client, registry.host)


def xfail_on_reference(
    interop_target: str, request: pytest.FixtureRequest, reason: str
) -> None:
    """Known gaps of the development target; strict, so a fix there shows up."""
    if interop_target == "reference":
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture
def referrers_api(interop_target: str, request: pytest.FixtureRequest) -> None:
    reason = "Distribution 2.8 has no referrers API (OCI Distribution v1.1)"
    xfail_on_reference(interop_target, request, reason)


@pytest.fixture
def lexical_tag_pages(interop_target: str, request: pytest.FixtureRequest) -> None:
    reason = "Distribution 2.8 neither sorts tags nor honours ?n="
    xfail_on_reference(interop_target, request, reason)


def write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def test_push_and_pull_artifact_with_custom_type(
    oras: Oras, wire: RegistryHTTP, repo: str, scratch: Path
) -> None:
    notes = b"release notes for an artifact\n" * 20
    files = [f"{write(scratch, 'notes.txt', notes)}:{DOCS_LAYER}"]
    config_path = write(scratch, "config.json", b'{"kind":"docs"}')
    config = f"{config_path}:{DOCS_CONFIG}"
    target = oras.ref(repo, "docs")

    pushed = oras.client.push(
        target=target,
        files=files,
        manifest_config=config,
        manifest_annotations={"org.example.note": "interop"},
        disable_path_validation=True,
    )

    fetched = wire.fetch_manifest(repo, "docs")
    assert pushed.headers["Docker-Content-Digest"] == sha256_digest(fetched.body)
    manifest = oras.client.get_manifest(target)
    assert manifest["config"]["mediaType"] == DOCS_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCS_LAYER]
    assert manifest["annotations"] == {"org.example.note": "interop"}

    out = scratch / "pulled"
    paths = oras.client.pull(target=target, outdir=str(out))
    assert [Path(path).name for path in paths] == ["notes.txt"]
    assert (out / "notes.txt").read_bytes() == notes


def test_chunked_upload(oras: Oras, repo: str, scratch: Path) -> None:
    data = os.urandom(300 * 1024 + 17)
    target = oras.ref(repo, "chunked")

    # POST, then PATCHes of 64 KiB with Content-Range, then the closing PUT.
    oras.client.push(
        target=target,
        files=[write(scratch, "blob.bin", data)],
        do_chunked=True,
        chunk_size=64 * 1024,
        disable_path_validation=True,
    )

    paths = oras.client.pull(target=target, outdir=str(scratch / "out"))
    assert [Path(path).name for path in paths] == ["blob.bin"]
    assert (scratch / "out" / "blob.bin").read_bytes() == data


def push_signature(
    oras: Oras, wire: RegistryHTTP, repo: str, subject: dict[str, Any]
) -> str:
    """A referrer with an explicit artifactType and the empty config (image-spec 1.1).

    oras-py's push() cannot set artifactType, so the blobs go up over plain HTTP
    and the manifest through the oras client.
    """
    payload = b"not really a signature"
    for blob in (b"{}", payload):
        wire.push_blob(repo, blob, sha256_digest(blob))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE,
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [
            {
                "mediaType": "application/octet-stream",
                "digest": sha256_digest(payload),
                "size": len(payload),
            }
        ],
        "subject": subject,
    }
    container = oras.client.get_container(oras.ref(repo, "sig"))
    response = oras.client.upload_manifest(manifest, container)
    assert response.status_code == 201
    return str(response.headers["Docker-Content-Digest"])


@pytest.mark.usefixtures("referrers_api")
def test_referrers(
    oras: Oras,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
    scratch: Path,
) -> None:
    from oras.oci import Subject  # type: ignore[import-untyped]

    image = layout.single
    wire.push_image(repo, layout.path, image, "app")
    subject = Subject(OCI_MANIFEST, image.manifest.digest, image.manifest.size)
    sbom_config = write(scratch, "sbom.json", b'{"sbom":true}') + ":" + SBOM_CONFIG
    sbom_push = oras.client.push(
        target=oras.ref(repo, "sbom"),
        files=[write(scratch, "sbom.spdx", b"SPDXVersion: SPDX-2.3\n")],
        manifest_config=sbom_config,
        manifest_annotations={"org.example.kind": "sbom"},
        subject=subject,
        disable_path_validation=True,
    )
    # Spec: a registry that understands `subject` answers with OCI-Subject.
    assert sbom_push.headers.get("OCI-Subject") == image.manifest.digest
    sbom = sbom_push.headers["Docker-Content-Digest"]
    signature = push_signature(oras, wire, repo, dataclasses.asdict(subject))

    response = wire.referrers(repo, image.manifest.digest)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(OCI_INDEX)
    index = response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    found = {entry["digest"]: entry for entry in index["manifests"]}
    assert set(found) == {sbom, signature}
    # Without an artifactType field, the config media type stands in for it.
    assert found[sbom]["artifactType"] == SBOM_CONFIG
    assert found[sbom]["annotations"] == {"org.example.kind": "sbom"}
    assert found[signature]["artifactType"] == SIGNATURE
    for digest, entry in found.items():
        assert entry["mediaType"] == OCI_MANIFEST
        assert entry["size"] == len(wire.fetch_manifest(repo, digest).body)

    filtered = wire.referrers(repo, image.manifest.digest, artifact_type=SIGNATURE)
    assert filtered.status_code == 200
    assert filtered.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [entry["digest"] for entry in filtered.json()["manifests"]] == [signature]

    none = wire.referrers(repo, image.config.digest)
    assert none.status_code == 200
    assert none.json()["manifests"] == []


def push_tags(oras: Oras, repo: str, scratch: Path) -> None:
    path = write(scratch, "file.txt", b"tagged\n")
    for tag in TAGS:
        oras.client.push(
            target=oras.ref(repo, tag),
            files=[path],
            disable_path_validation=True,
        )


def test_tag_listing(oras: Oras, repo: str, scratch: Path) -> None:
    push_tags(oras, repo, scratch)

    assert sorted(oras.client.get_tags(oras.ref(repo))) == sorted(TAGS)


@pytest.mark.usefixtures("lexical_tag_pages")
def test_tag_pagination(
    oras: Oras,
    wire: RegistryHTTP,
    repo: str,
    scratch: Path,
) -> None:
    push_tags(oras, repo, scratch)

    # Spec: tags come in lexical order (the tags here are lower case, so that is
    # plain sorted()), and ?n= bounds a page, with a Link header to the next one.
    assert wire.tags(repo) == sorted(TAGS)
    assert oras.client.get_tags(oras.ref(repo), N=2) == sorted(TAGS)[:2]
    pages: list[list[str]] = []
    url = f"/v2/{repo}/tags/list?n=2"
    while url:
        response = wire.client.get(url)
        assert response.status_code == 200
        pages.append(response.json()["tags"])
        url = response.links.get("next", {}).get("url", "")
    assert pages == [sorted(TAGS)[i : i + 2] for i in range(0, len(TAGS), 2)]
