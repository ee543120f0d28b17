"""podman (rootful, vfs storage in a private graphroot): pull, tag, push, pull again."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.prerequisites import require

from .clients import require_root
from .layouts import file_digest, read_layer

if TYPE_CHECKING:
    from pathlib import Path

    from .clients import ContainersEnv
    from .conftest import Layout
    from .wire import RegistryHTTP

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _podman() -> None:
    require("podman")
    require_root("podman with a private graphroot")


def test_config_and_storage_are_private(containers_env: ContainersEnv) -> None:
    info = containers_env.run_json(containers_env.podman("info", "--format", "json"))
    assert isinstance(info, dict)
    assert info["store"]["graphRoot"] == str(containers_env.graphroot)
    assert info["store"]["graphDriverName"] == "vfs"
    registry = info["registries"][containers_env.registry_host]
    assert registry["Insecure"] is True
    assert info["registries"].get("search", []) == []


def test_pull_tag_push_pull(
    containers_env: ContainersEnv,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
    scratch: Path,
) -> None:
    image = layout.single
    wire.push_image(repo, layout.path, image, "src")
    source = containers_env.image(repo, "src")
    target = containers_env.image(f"{repo}-copy", "pushed")
    podman = containers_env.podman

    containers_env.run(podman("pull", "--quiet", "--tls-verify=false", source))
    digest = containers_env.run(
        podman("image", "inspect", "--format", "{{.Digest}}", source)
    ).stdout.strip()
    assert digest == image.manifest.digest

    containers_env.run(podman("tag", source, target))
    containers_env.run(podman("push", "--quiet", "--tls-verify=false", target))
    containers_env.run(podman("rmi", "--force", source, target))

    # podman may recompress layers on push, so compare what survives that: the
    # uncompressed layer digests in the config, and the files in the layers.
    pushed = wire.fetch_manifest(f"{repo}-copy", "pushed")
    manifest = json.loads(pushed.body)
    config_digest = manifest["config"]["digest"]
    config = wire.fetch_json(f"{repo}-copy", config_digest)
    assert config["rootfs"]["diff_ids"] == list(image.diff_ids)
    first = wire.fetch_blob(f"{repo}-copy", manifest["layers"][0]["digest"])
    assert read_layer(first) == image.files

    containers_env.run(podman("pull", "--quiet", "--tls-verify=false", target))
    again = containers_env.run(
        podman("image", "inspect", "--format", "{{.Digest}}", target)
    ).stdout.strip()
    assert again == pushed.digest

    saved = scratch / "saved"
    containers_env.run(podman("save", "--format", "oci-dir", "-o", str(saved), target))
    assert file_digest(saved / "blobs" / "sha256" / config_digest[7:]) == config_digest
