"""The registry's cosign signature as a stock client fetches it.

Debian's skopeo has no sigstore support, so it cannot verify the ``.sig`` tag itself;
it fetches it like any image (``skopeo copy … dir:``), and openssl verifies the
payload's signature with the registry's public key, as docs/signing.md shows.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from cargohold.api.app import open_services
from cargohold.registry.signing.cosign import SIMPLESIGNING, sig_tag
from cargohold.registry.signing.formats import SigningTarget
from cargohold.settings import ServerSettings, Settings
from tests.prerequisites import require
from tests.signing_keys import MemoryKeyStore, openssl_verifies, public_pem

from .layouts import OCI_MANIFEST

if TYPE_CHECKING:
    from pathlib import Path

    from .clients import ContainersEnv
    from .conftest import Layout
    from .servers import RegistryServer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


async def _sign(registry: RegistryServer, repo: str, digest: str) -> MemoryKeyStore:
    """Sign as the registry's ``sign`` job does, from another process on the same
    data directory."""
    settings = Settings(
        data_dir=registry.data_dir,
        server=ServerSettings(host="127.0.0.1", port=registry.port),
    )
    keys = MemoryKeyStore()
    services = open_services(settings)
    try:
        host = settings.server.public_host
        target = SigningTarget(repo, digest, OCI_MANIFEST, f"{host}/{repo}")
        await services.cosign.sign(target, keys)
    finally:
        await services.close()
    return keys


@pytest.mark.anyio
async def test_skopeo_fetches_the_sig_tag_and_openssl_verifies_it(
    registry: RegistryServer,
    containers_env: ContainersEnv,
    layout: Layout,
    repo: str,
    scratch: Path,
) -> None:
    require("skopeo")
    if registry.target != "cargohold":
        # The reference registry does not sign; a cluster's data is not in data_dir.
        pytest.skip("signs through a single cargohold server's data directory")
    env = containers_env
    flags = ("--quiet", "--src-tls-verify=false", "--dest-tls-verify=false")
    env.run(env.skopeo("copy", *flags, layout.ref("single"), env.docker(repo, "v1")))
    digest = layout.single.manifest.digest
    keys = await _sign(registry, repo, digest)

    out = scratch / "sig"
    env.run(env.skopeo("copy", *flags, env.docker(repo, sig_tag(digest)), f"dir:{out}"))
    manifest = json.loads((out / "manifest.json").read_bytes())
    [layer] = manifest["layers"]
    assert layer["mediaType"] == SIMPLESIGNING
    payload = out / layer["digest"].removeprefix("sha256:")
    document = json.loads(payload.read_bytes())
    assert document["critical"]["image"]["docker-manifest-digest"] == digest
    assert document["critical"]["identity"]["docker-reference"] == (
        f"127.0.0.1:{registry.port}/{repo}"
    )
    signature = scratch / "payload.sig"
    signature.write_bytes(
        base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    )
    key = scratch / "cosign.pub"
    key.write_text(public_pem(keys.active))
    assert openssl_verifies(key, payload, signature)
    key.write_text(public_pem(MemoryKeyStore().active))
    assert not openssl_verifies(key, payload, signature)
