"""Fixtures for the interop tier: the registry under test, images, client environments.

The registry runs once per session (``python -m cargohold serve``, or the reference
registry when ``CARGOHOLD_INTEROP_TARGET=reference``); every test gets its own
repository name, so tests do not see each other's tags. Client environments
(containers config and storage, containerd) are per module.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.prerequisites import require
from tests.watch5xx import ALLOW_MARK

from .clients import ContainersEnv, require_root
from .layouts import Image, LayoutWriter, MultiArch
from .servers import Containerd, RegistryServer, selected_target
from .wire import RegistryHTTP

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BIG_LAYER_BYTES = 100 * 1024 * 1024
REGISTRIES = ("registry", "secure_registry")


@pytest.fixture(autouse=True)
def _no_unexpected_5xx(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test during which a registry it uses logged a 5xx or an unhandled error.

    The registries live for the session: only what a test's own requests logged counts.
    """
    servers: list[RegistryServer] = [
        request.getfixturevalue(name)
        for name in REGISTRIES
        if name in request.fixturenames
    ]
    offsets = [server.log_size() for server in servers]
    yield
    if request.node.get_closest_marker(ALLOW_MARK) is not None:
        return
    errors = [
        error
        for server, offset in zip(servers, offsets, strict=True)
        for error in server.errors_since(offset)
    ]
    if errors:
        pytest.fail(
            "the registry answered 5xx or failed unhandled (mark the test allow_5xx if "
            "expected):\n" + "\n".join(errors[:20]),
            pytrace=False,
        )


@dataclass(frozen=True, slots=True)
class Layout:
    """An OCI image layout on disk with the images the tests push."""

    path: Path
    single: Image
    multi: MultiArch

    def ref(self, tag: str) -> str:
        """The ``oci:`` transport reference that skopeo and podman read."""
        return f"oci:{self.path}:{tag}"


@dataclass(frozen=True, slots=True)
class BigLayout:
    path: Path
    image: Image

    def ref(self, tag: str) -> str:
        return f"oci:{self.path}:{tag}"


@pytest.fixture(scope="session")
def interop_target() -> str:
    return selected_target()


def _serving(
    target: str, workdir: Path, settings: dict[str, str]
) -> Iterator[RegistryServer]:
    server = RegistryServer(target, workdir, settings=settings)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _containers_env(root: Path, registry: RegistryServer) -> Iterator[ContainersEnv]:
    env = ContainersEnv(root, registry.host)
    env.write()
    yield env
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(
    interop_target: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    # The protocol suites test the registry core: authentication is off here and on
    # in ``secure_registry`` (the access-tier suites).
    yield from _serving(
        interop_target,
        tmp_path_factory.mktemp("registry"),
        {"CARGOHOLD_AUTH_MODE": "none"},
    )


@pytest.fixture(scope="session")
def wire(registry: RegistryServer) -> Iterator[RegistryHTTP]:
    client = RegistryHTTP(registry.url)
    yield client
    client.close()


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of this test's own, valid per the distribution spec."""
    words = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"interop/{words[:60].strip('-')}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, removed after the test (layouts and pulls can be large)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    """One layout with a two-layer amd64 image and an amd64+arm64 index."""
    path = tmp_path_factory.mktemp("layout")
    writer = LayoutWriter(path)
    base_layer, base_diff = writer.add_random_layer("opt/payload.bin", 64 * 1024)
    single = writer.add_image(
        {"etc/motd": b"cargohold interop\n", "hello.txt": b"hello from single\n"},
        extra_layers=((base_layer, base_diff),),
    )
    multi = writer.add_multi_arch(
        {
            arch: {"arch.txt": f"built for {arch}\n".encode(), "etc/motd": b"multi\n"}
            for arch in ("amd64", "arm64")
        }
    )
    writer.tag(single.manifest, "single")
    writer.tag(multi.index, "multi")
    writer.close()
    yield Layout(path, single, multi)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def big_layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigLayout]:
    """An image whose second layer holds 100 MiB of random (incompressible) bytes."""
    path = tmp_path_factory.mktemp("big-layout")
    writer = LayoutWriter(path)
    big = writer.add_random_layer("data/random.bin", BIG_LAYER_BYTES)
    image = writer.add_image({"README": b"big layer\n"}, extra_layers=(big,))
    writer.tag(image.manifest, "big")
    writer.close()
    yield BigLayout(path, image)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def containers_env(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainersEnv]:
    """Private registries.conf (registry marked insecure), vfs storage, policy."""
    yield from _containers_env(tmp_path_factory.mktemp("containers"), registry)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    require("containerd", "ctr")
    require_root("containerd")
    workdir = tmp_path_factory.mktemp("containerd")
    daemon = Containerd(workdir)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


ADMIN_USER, ADMIN_PASSWORD = "root", "interop-admin-password"


@pytest.fixture(scope="session")
def secure_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RegistryServer]:
    """cargohold with token auth on (its default) and a known first administrator."""
    yield from _serving(
        "cargohold",
        tmp_path_factory.mktemp("secure-registry"),
        {
            "CARGOHOLD_AUTH_MODE": "token",
            "CARGOHOLD_ADMIN_USER": ADMIN_USER,
            "CARGOHOLD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        },
    )


@pytest.fixture(scope="module")
def secure_env(
    secure_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainersEnv]:
    yield from _containers_env(
        tmp_path_factory.mktemp("secure-containers"), secure_registry
    )
