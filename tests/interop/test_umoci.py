"""umoci unpacks what skopeo pulled from the registry: the files are the pushed ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.prerequisites import require

from .clients import require_root, run

if TYPE_CHECKING:
    from pathlib import Path

    from .clients import ContainersEnv
    from .conftest import Layout
    from .wire import RegistryHTTP

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


@pytest.fixture
def pushed(wire: RegistryHTTP, layout: Layout, repo: str) -> str:
    """The repository, holding the amd64+arm64 index as ``multi``."""
    require("skopeo", "umoci")
    require_root("umoci unpack (file ownership)")
    wire.push_multi_arch(repo, layout.path, layout.multi, "multi")
    return repo


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_pulled_image_unpacks_to_the_pushed_files(
    containers_env: ContainersEnv, layout: Layout, pushed: str, scratch: Path, arch: str
) -> None:
    pulled = scratch / "pulled"
    containers_env.run(
        containers_env.skopeo(
            "--override-arch", arch, "--override-os", "linux",
            "copy", "--quiet", "--src-tls-verify=false",
            containers_env.docker(pushed, "multi"), f"oci:{pulled}:{arch}",
        )
    )  # fmt: skip

    bundle = scratch / "bundle"
    run(["umoci", "unpack", "--image", f"{pulled}:{arch}", str(bundle)])

    rootfs = bundle / "rootfs"
    unpacked = {
        str(path.relative_to(rootfs)): path.read_bytes()
        for path in rootfs.rglob("*")
        if path.is_file()
    }
    assert unpacked == layout.multi.children[arch].files
