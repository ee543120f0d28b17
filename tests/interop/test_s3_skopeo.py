"""skopeo against cargohold on S3 (moto's server): push, then pull streamed or by 307.

With ``redirect`` on, every blob GET answers 307 to a presigned URL on the S3 endpoint,
which skopeo (containers/image) follows; without it, the blobs stream through the
server. Either way every pulled blob must have the digest pushed.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from tests.prerequisites import require
from tests.s3server import create_bucket, storage_environ

from .clients import ContainersEnv
from .conftest import _serving
from .layouts import file_digest, read_layout_index, sha256_digest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import Layout
    from .servers import RegistryServer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", params=["streamed", "redirect"])
def s3_registry(
    request: pytest.FixtureRequest,
    s3_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RegistryServer]:
    require("skopeo")
    redirect = "true" if request.param == "redirect" else "false"
    settings = {"CARGOHOLD_AUTH_MODE": "none"} | storage_environ(
        s3_endpoint, create_bucket(s3_endpoint), redirect=redirect
    )
    yield from _serving("cargohold", tmp_path_factory.mktemp("s3-registry"), settings)


@pytest.fixture(scope="module")
def s3_env(
    s3_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainersEnv]:
    root = tmp_path_factory.mktemp("s3-containers")
    env = ContainersEnv(root, s3_registry.host)
    env.write()
    yield env
    shutil.rmtree(root, ignore_errors=True)


def test_oci_image_round_trip_on_s3(
    s3_registry: RegistryServer,
    s3_env: ContainersEnv,
    layout: Layout,
    repo: str,
    scratch: Path,
) -> None:
    offset = s3_registry.log_size()
    image = layout.single
    remote = s3_env.docker(repo, "v1")
    flags = ("--quiet", "--src-tls-verify=false", "--dest-tls-verify=false")
    s3_env.run(s3_env.skopeo("copy", *flags, layout.ref("single"), remote))

    raw = s3_env.run(s3_env.skopeo("inspect", "--raw", "--tls-verify=false", remote))
    assert sha256_digest(raw.stdout.encode()) == image.manifest.digest
    out = scratch / "back"
    s3_env.run(s3_env.skopeo("copy", *flags, remote, f"oci:{out}:v1"))
    assert read_layout_index(out)["v1"].digest == image.manifest.digest
    for blob in (image.config, *image.layers):
        assert file_digest(out / "blobs" / "sha256" / blob.digest[7:]) == blob.digest
    assert s3_registry.errors_since(offset) == []
    if s3_registry.settings["CARGOHOLD_STORAGE_REDIRECT"] == "true":
        # The layers really came from the store: the server answered them with 307.
        log = s3_registry.log_path.read_text()
        assert all(f"/blobs/{layer.digest}" in log for layer in image.layers)
        assert '"status": 307' in log or "status=307" in log, log[-2000:]
