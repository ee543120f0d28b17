"""skopeo against the registry: OCI and Docker v2s2 pushes, indexes, inspect, delete."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.prerequisites import require

from .layouts import (
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    file_digest,
    layout_blob,
    read_layout_index,
    sha256_digest,
)

if TYPE_CHECKING:
    from pathlib import Path

    from .clients import ContainersEnv
    from .conftest import BigLayout, Layout
    from .wire import RegistryHTTP

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _skopeo() -> None:
    require("skopeo")


def copy(env: ContainersEnv, src: str, dest: str, *flags: str) -> None:
    env.run(
        env.skopeo(
            "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
            *flags, src, dest,
        )
    )  # fmt: skip


def inspect_raw(env: ContainersEnv, ref: str) -> bytes:
    argv = env.skopeo("inspect", "--raw", "--tls-verify=false", ref)
    return env.run(argv).stdout.encode()


def test_oci_image_round_trip_keeps_every_digest(
    containers_env: ContainersEnv,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
    scratch: Path,
) -> None:
    image = layout.single
    remote = containers_env.docker(repo, "v1")
    copy(containers_env, layout.ref("single"), remote)

    raw = inspect_raw(containers_env, remote)
    assert sha256_digest(raw) == image.manifest.digest
    assert raw == layout_blob(layout.path, image.manifest.digest)
    fetched = wire.fetch_manifest(repo, "v1")
    assert fetched.media_type == OCI_MANIFEST
    assert fetched.digest == image.manifest.digest

    out = scratch / "back"
    copy(containers_env, remote, f"oci:{out}:v1")
    assert read_layout_index(out)["v1"].digest == image.manifest.digest
    for blob in (image.config, *image.layers):
        assert file_digest(out / "blobs" / "sha256" / blob.digest[7:]) == blob.digest

    inspected = containers_env.run_json(
        containers_env.skopeo("inspect", "--tls-verify=false", remote)
    )
    assert isinstance(inspected, dict)
    assert inspected["Digest"] == image.manifest.digest
    assert inspected["Layers"] == [layer.digest for layer in image.layers]
    assert inspected["Architecture"] == "amd64"
    assert inspected["Labels"] == {"cargohold.test": "amd64"}


def test_docker_v2s2_push_and_dir_pull(
    containers_env: ContainersEnv,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
    scratch: Path,
) -> None:
    image = layout.single
    remote = containers_env.docker(repo, "v2s2")
    copy(containers_env, layout.ref("single"), remote, "--format", "v2s2")

    raw = inspect_raw(containers_env, remote)
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        DOCKER_LAYER_GZIP
    ] * len(image.layers)
    # skopeo rewrites the config for Docker, but the compressed layers are reused.
    assert [layer["digest"] for layer in manifest["layers"]] == [
        layer.digest for layer in image.layers
    ]
    config = wire.fetch_json(repo, manifest["config"]["digest"])
    assert config["rootfs"]["diff_ids"] == list(image.diff_ids)

    head = wire.client.head(
        f"/v2/{repo}/manifests/v2s2", headers={"Accept": DOCKER_MANIFEST}
    )
    assert head.status_code == 200
    assert head.headers["Content-Type"].startswith(DOCKER_MANIFEST)
    assert head.headers["Docker-Content-Digest"] == sha256_digest(raw)

    out = scratch / "dir"
    copy(containers_env, remote, f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == raw
    for layer in image.layers:
        pulled = out / layer.digest.removeprefix("sha256:")
        assert file_digest(pulled) == layer.digest


def test_multi_arch_index_with_all(
    containers_env: ContainersEnv,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
    scratch: Path,
) -> None:
    multi = layout.multi
    remote = containers_env.docker(repo, "multi")
    copy(containers_env, layout.ref("multi"), remote, "--all")

    raw = inspect_raw(containers_env, remote)
    assert sha256_digest(raw) == multi.index.digest
    assert json.loads(raw)["mediaType"] == OCI_INDEX
    for arch, child in multi.children.items():
        # skopeo picks the child for --override-arch, as a node of that arch would.
        chosen = containers_env.run_json(
            containers_env.skopeo(
                "--override-arch", arch, "--override-os", "linux",
                "inspect", "--tls-verify=false", remote,
            )
        )  # fmt: skip
        assert isinstance(chosen, dict)
        assert chosen["Architecture"] == arch
        assert chosen["Layers"] == [layer.digest for layer in child.layers]
        by_digest = wire.fetch_manifest(repo, child.manifest.digest)
        assert by_digest.digest == child.manifest.digest

    out = scratch / "back"
    copy(containers_env, remote, f"oci:{out}:multi", "--all")
    assert read_layout_index(out)["multi"].digest == multi.index.digest
    for child in multi.children.values():
        for blob in (child.manifest, child.config, *child.layers):
            assert (
                file_digest(out / "blobs" / "sha256" / blob.digest[7:]) == blob.digest
            )


def test_list_tags(
    containers_env: ContainersEnv,
    layout: Layout,
    repo: str,
) -> None:
    tags = ["v1", "latest", "1.0.0", "stable"]
    for tag in tags:
        copy(
            containers_env,
            layout.ref("single"),
            containers_env.docker(repo, tag),
        )
    listed = containers_env.run_json(
        containers_env.skopeo(
            "list-tags",
            "--tls-verify=false",
            containers_env.docker(repo),
        )
    )
    assert isinstance(listed, dict)
    assert listed["Repository"] == f"{containers_env.registry_host}/{repo}"
    assert sorted(listed["Tags"]) == sorted(tags)


def test_delete_then_manifest_is_gone(
    containers_env: ContainersEnv,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
) -> None:
    image = layout.single
    remote = containers_env.docker(repo, "doomed")
    copy(containers_env, layout.ref("single"), remote)
    assert wire.manifest(repo, image.manifest.digest).status_code == 200

    # skopeo resolves the tag and sends DELETE /v2/<name>/manifests/<digest>.
    containers_env.run(containers_env.skopeo("delete", "--tls-verify=false", remote))

    assert wire.manifest(repo, image.manifest.digest).status_code == 404
    assert wire.manifest(repo, "doomed").status_code == 404
    containers_env.run(
        containers_env.skopeo("inspect", "--raw", "--tls-verify=false", remote),
        expect_failure=True,
    )


def test_100_mib_layer_round_trip(
    containers_env: ContainersEnv,
    wire: RegistryHTTP,
    big_layout: BigLayout,
    repo: str,
    scratch: Path,
) -> None:
    image = big_layout.image
    big = max(image.layers, key=lambda layer: layer.size)
    assert big.size > 100 * 1024 * 1024
    remote = containers_env.docker(repo, "big")
    copy(containers_env, big_layout.ref("big"), remote)

    head = wire.client.head(f"/v2/{repo}/blobs/{big.digest}")
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == big.size

    out = scratch / "back"
    copy(containers_env, remote, f"oci:{out}:big")
    assert read_layout_index(out)["big"].digest == image.manifest.digest
    assert file_digest(out / "blobs" / "sha256" / big.digest[7:]) == big.digest
