"""containerd's ctr pulls from the registry the way a kubelet's containerd would."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from .clients import run
from .layouts import layout_blob

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .conftest import Layout
    from .layouts import Image
    from .servers import Containerd, RegistryServer
    from .wire import RegistryHTTP

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

UNCOMPRESSED = "containerd.io/uncompressed"


@pytest.fixture
def containerd(containerd: Containerd) -> Iterator[Containerd]:
    """The module's containerd, with an empty content store for each test."""
    assert content_labels(containerd) == {}
    yield containerd
    refs = run(containerd.ctr("images", "ls", "--quiet")).stdout.split()
    if refs:
        # --sync waits for the garbage collector, which drops the unreferenced blobs.
        run(containerd.ctr("images", "rm", "--sync", *refs))


def pull(containerd: Containerd, ref: str, *platform_flags: str) -> None:
    # native: the overlayfs snapshotter may not mount inside a CI sandbox.
    run(
        containerd.ctr(
            "images", "pull", "--plain-http", "--snapshotter", "native",
            *platform_flags, ref,
        )
    )  # fmt: skip


def content_labels(containerd: Containerd) -> dict[str, dict[str, str]]:
    """``ctr content ls``: digest -> labels."""
    out = run(containerd.ctr("content", "ls")).stdout.splitlines()[1:]
    labels: dict[str, dict[str, str]] = {}
    for line in out:
        fields = line.split("\t")
        pairs = fields[-1].split(",") if fields[-1] not in {"", "-"} else []
        labels[fields[0]] = dict(pair.split("=", 1) for pair in pairs)
    return labels


def image_digest(containerd: Containerd, ref: str) -> str:
    listing = run(containerd.ctr("images", "ls")).stdout.splitlines()[1:]
    for line in listing:
        fields = line.split()
        if fields and fields[0] == ref:
            return fields[2]
    pytest.fail(f"{ref} not in ctr images ls:\n{listing}")


def content_bytes(containerd: Containerd, digest: str) -> bytes:
    argv = containerd.ctr("content", "get", digest)
    return subprocess.run(argv, capture_output=True, check=True, timeout=60).stdout


def assert_image_stored(containerd: Containerd, layout: Layout, image: Image) -> None:
    """Every blob is in the content store byte for byte, and was unpacked."""
    labels = content_labels(containerd)
    for blob in (image.manifest, image.config, *image.layers):
        assert blob.digest in labels
        assert content_bytes(containerd, blob.digest) == layout_blob(
            layout.path, blob.digest
        )
    # Unpacking records each layer's uncompressed digest: it must match the config.
    unpacked = tuple(labels[layer.digest].get(UNCOMPRESSED) for layer in image.layers)
    assert unpacked == image.diff_ids


def test_pull_single_arch(
    containerd: Containerd,
    registry: RegistryServer,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
) -> None:
    image = layout.single
    wire.push_image(repo, layout.path, image, "v1")
    ref = f"{registry.host}/{repo}:v1"

    pull(containerd, ref, "--platform", "linux/amd64")

    assert image_digest(containerd, ref) == image.manifest.digest
    assert_image_stored(containerd, layout, image)
    snapshots = containerd.workdir / "root" / "io.containerd.snapshotter.v1.native"
    unpacked = {path.read_bytes() for path in snapshots.glob("snapshots/*/hello.txt")}
    assert unpacked == {image.files["hello.txt"]}


def test_pull_multi_arch_one_platform(
    containerd: Containerd,
    registry: RegistryServer,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
) -> None:
    multi = layout.multi
    wire.push_multi_arch(repo, layout.path, multi, "multi")
    ref = f"{registry.host}/{repo}:multi"

    pull(containerd, ref, "--platform", "linux/amd64")

    assert image_digest(containerd, ref) == multi.index.digest
    assert content_bytes(containerd, multi.index.digest) == layout_blob(
        layout.path, multi.index.digest
    )
    assert_image_stored(containerd, layout, multi.children["amd64"])
    arm64 = multi.children["arm64"]
    stored = content_labels(containerd)
    assert all(layer.digest not in stored for layer in arm64.layers)


def test_pull_multi_arch_all_platforms(
    containerd: Containerd,
    registry: RegistryServer,
    wire: RegistryHTTP,
    layout: Layout,
    repo: str,
) -> None:
    multi = layout.multi
    wire.push_multi_arch(repo, layout.path, multi, "all")
    ref = f"{registry.host}/{repo}:all"

    pull(containerd, ref, "--all-platforms")

    assert image_digest(containerd, ref) == multi.index.digest
    stored = content_labels(containerd)
    for child in multi.children.values():
        for blob in (child.manifest, child.config, *child.layers):
            assert content_bytes(containerd, blob.digest) == layout_blob(
                layout.path, blob.digest
            )
            assert blob.digest in stored
