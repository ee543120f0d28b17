"""buildah: build from scratch, commit, push; skopeo pulls it back for inspection."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.prerequisites import require

from .clients import require_root
from .layouts import file_digest, layout_blob, read_layer, read_layout_index

if TYPE_CHECKING:
    from pathlib import Path

    from .clients import ContainersEnv
    from .wire import RegistryHTTP

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _buildah() -> None:
    require("buildah", "skopeo")
    require_root("buildah with a private graphroot")


def test_build_from_scratch_push_and_read_back(
    containers_env: ContainersEnv,
    wire: RegistryHTTP,
    repo: str,
    scratch: Path,
) -> None:
    buildah = containers_env.buildah
    payload = b"built by buildah for cargohold\n"
    (scratch / "hello.txt").write_bytes(payload)
    local = f"localhost/{repo}:built"
    remote = containers_env.docker(repo, "built")

    container = containers_env.run(buildah("from", "--quiet", "scratch")).stdout.strip()
    try:
        containers_env.run(
            buildah(
                "copy",
                "--quiet",
                container,
                str(scratch / "hello.txt"),
                "/srv/hello.txt",
            )
        )
        containers_env.run(
            buildah(
                "config",
                "--label",
                "org.example.built=yes",
                "--cmd",
                "/bin/true",
                container,
            )
        )
        containers_env.run(
            buildah("commit", "--quiet", "--format", "oci", container, local)
        )
    finally:
        containers_env.run(buildah("rm", container))
    containers_env.run(buildah("push", "--quiet", "--tls-verify=false", local, remote))
    containers_env.run(buildah("rmi", local))

    fetched = wire.fetch_manifest(repo, "built")
    manifest = json.loads(fetched.body)
    assert len(manifest["layers"]) == 1

    out = scratch / "pulled"
    containers_env.run(
        containers_env.skopeo(
            "copy", "--quiet", "--src-tls-verify=false", remote, f"oci:{out}:built"
        )
    )
    assert read_layout_index(out)["built"].digest == fetched.digest
    layer = manifest["layers"][0]["digest"]
    assert file_digest(out / "blobs" / "sha256" / layer[7:]) == layer
    files = read_layer(layout_blob(out, layer))
    assert files == {"srv/hello.txt": payload}
    config = json.loads(layout_blob(out, manifest["config"]["digest"]))
    assert config["config"]["Labels"]["org.example.built"] == "yes"
    assert config["config"]["Cmd"] == ["/bin/true"]
