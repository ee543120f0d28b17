"""Stock skopeo and podman verify the registry's OpenPGP simple signatures (#8).

A registry of its own: two workers, signing on for ``signed/*`` only, auth off. The
signatures are read through the registry signature API extension
(``X-Registry-Supports-Signatures``), with a private ``registries.d`` that turns the
sigstore attachments off, and a private ``policy.json`` per check (``--policy``):

* a registry-signed image is accepted by a ``signedBy`` policy with the registry key;
* an unsigned image is refused;
* an image signed by another key is refused;
* the registry's signature copied to another repository is refused (identity);
* ``skopeo copy --sign-by`` stores the client's signature, and a policy trusting that
  key accepts it;
* ``podman pull`` with the same policy pulls the signed image and refuses the unsigned.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.prerequisites import require

from .clients import ContainersEnv, require_root, run
from .conftest import _containers_env, _serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import Layout
    from .servers import RegistryServer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]

SIGNING_WAIT = 60.0


@pytest.fixture(scope="module")
def signing_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RegistryServer]:
    require("skopeo", "gpg")
    yield from _serving(
        "cargohold",
        tmp_path_factory.mktemp("signing-registry"),
        {
            "CARGOHOLD_AUTH_MODE": "none",
            "CARGOHOLD_SERVER_WORKERS": "2",
            "CARGOHOLD_SIGNING_ENABLED": "true",
            "CARGOHOLD_SIGNING_REPOSITORIES": "signed/*",
            "CARGOHOLD_SBOM_ENABLED": "false",
        },
    )


@pytest.fixture(scope="module")
def env(
    signing_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainersEnv]:
    yield from _containers_env(tmp_path_factory.mktemp("containers"), signing_registry)


@pytest.fixture(scope="module")
def http(signing_registry: RegistryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=signing_registry.url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def registry_key(http: httpx.Client, env: ContainersEnv) -> Path:
    """The registry's OpenPGP public key, as published."""
    answer = http.get("/.well-known/cargohold/signing-key.asc")
    assert answer.status_code == 200, answer.text
    assert "BEGIN PGP PUBLIC KEY BLOCK" in answer.text
    path = env.root / "registry-key.asc"
    path.write_text(answer.text)
    return path


@pytest.fixture(scope="module")
def client_gpg(env: ContainersEnv) -> Iterator[tuple[Path, str, Path]]:
    """A client's own OpenPGP key (GNUPGHOME, fingerprint, armored public key)."""
    home = env.root / "gnupg"
    home.mkdir(mode=0o700)
    gpg_env = os.environ | {"GNUPGHOME": str(home)}
    run(
        ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-gen-key", "ci signer <ci@example.test>", "ed25519", "sign", "never"],
        env=gpg_env,
    )  # fmt: skip
    listing = run(["gpg", "--batch", "--with-colons", "--list-keys"], env=gpg_env)
    fingerprint = next(
        line.split(":")[9]
        for line in listing.stdout.splitlines()
        if line.startswith("fpr:")
    )
    public = env.root / "client-key.asc"
    exported = run(["gpg", "--batch", "--armor", "--export", fingerprint], env=gpg_env)
    public.write_text(exported.stdout)
    yield home, fingerprint, public
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        check=False,
        capture_output=True,
        timeout=30,
    )


def registries_d(env: ContainersEnv, host: str) -> Path:
    """A private registries.d: the extension, not sigstore attachments."""
    folder = env.root / "registries.d"
    folder.mkdir(exist_ok=True)
    (folder / "cargohold.yaml").write_text(
        f"docker:\n  {host}:\n    use-sigstore-attachments: false\n"
    )
    return folder


def policy(env: ContainersEnv, name: str, host: str, key: Path) -> Path:
    """Images of ``host`` must carry a simple signature by ``key``."""
    path = env.root / f"policy-{name}.json"
    document = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                host: [
                    {
                        "type": "signedBy",
                        "keyType": "GPGKeys",
                        "keyPath": str(key),
                        # The registry signs the repository, not a tag.
                        "signedIdentity": {"type": "matchRepository"},
                    }
                ]
            },
            "oci": {"": [{"type": "insecureAcceptAnything"}]},
            "dir": {"": [{"type": "insecureAcceptAnything"}]},
        },
    }
    path.write_text(json.dumps(document))
    return path


def pull(
    env: ContainersEnv,
    policy_file: Path,
    source: str,
    target: Path,
    *,
    expect_failure: bool = False,
) -> subprocess.CompletedProcess[str]:
    shutil.rmtree(target, ignore_errors=True)
    return env.run(
        ["skopeo", "--policy", str(policy_file),
         "--registries.d", str(registries_d(env, env.registry_host)),
         "copy", "--quiet", "--src-tls-verify=false", source, f"dir:{target}"],
        expect_failure=expect_failure,
    )  # fmt: skip


def signatures(http: httpx.Client, repo: str, digest: str) -> list[dict[str, Any]]:
    answer = http.get(f"/extensions/v2/{repo}/signatures/{digest}")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["signatures"]
    return found


def wait_for_signatures(
    http: httpx.Client, repo: str, digest: str, count: int
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + SIGNING_WAIT
    while True:
        found = signatures(http, repo, digest)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def push(env: ContainersEnv, layout: Layout, repo: str, *flags: str) -> str:
    """Push the layout's single image to ``repo:v1``; its manifest digest."""
    env.run(
        env.skopeo(
            "--registries.d", str(registries_d(env, env.registry_host)),
            "copy", "--quiet", "--dest-tls-verify=false", *flags,
            layout.ref("single"), env.docker(repo, "v1"),
        )
    )  # fmt: skip
    return layout.single.manifest.digest


def test_the_extension_is_announced(http: httpx.Client) -> None:
    answer = http.get("/v2/")
    assert answer.headers["X-Registry-Supports-Signatures"] == "1"


def test_registry_signed_image_is_accepted(
    env: ContainersEnv,
    http: httpx.Client,
    layout: Layout,
    registry_key: Path,
    scratch: Path,
) -> None:
    repo = "signed/accepted"
    digest = push(env, layout, repo)
    found = wait_for_signatures(http, repo, digest, 1)
    assert len(found) == 1, "the registry did not sign the push"
    assert found[0]["schemaVersion"] == 2
    assert found[0]["type"] == "atomic"
    assert found[0]["name"].startswith(f"{digest}@")

    strict = policy(env, "registry", env.registry_host, registry_key)
    pull(env, strict, env.docker(repo, "v1"), scratch / "pulled")
    assert (scratch / "pulled" / "manifest.json").is_file()

    # gpg itself (not our code) finds a good signature over the right payload.
    signed = scratch / "signature.gpg"
    signed.write_bytes(base64.b64decode(found[0]["content"]))
    home = scratch / "verify-gnupg"
    home.mkdir(mode=0o700)
    gpg_env = os.environ | {"GNUPGHOME": str(home)}
    run(["gpg", "--batch", "--import", str(registry_key)], env=gpg_env)
    opened = run(["gpg", "--batch", "--decrypt", str(signed)], env=gpg_env)
    assert "Good signature" in opened.stderr
    claim = json.loads(opened.stdout)
    assert claim["critical"]["type"] == "atomic container signature"
    assert claim["critical"]["image"]["docker-manifest-digest"] == digest
    assert claim["critical"]["identity"]["docker-reference"] == (
        f"{env.registry_host}/{repo}"
    )
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"],
        check=False,
        capture_output=True,
        timeout=30,
    )


def test_unsigned_image_is_refused(
    env: ContainersEnv,
    http: httpx.Client,
    layout: Layout,
    registry_key: Path,
    scratch: Path,
) -> None:
    repo = "plain/unsigned"  # outside signing.repositories
    digest = push(env, layout, repo)
    assert signatures(http, repo, digest) == []
    strict = policy(env, "registry", env.registry_host, registry_key)
    refused = pull(
        env, strict, env.docker(repo, "v1"), scratch / "pulled", expect_failure=True
    )
    assert "signature" in refused.stderr.lower()


def test_client_signature_is_stored_and_only_its_key_accepts_it(
    env: ContainersEnv,
    http: httpx.Client,
    layout: Layout,
    registry_key: Path,
    client_gpg: tuple[Path, str, Path],
    scratch: Path,
) -> None:
    home, fingerprint, client_key = client_gpg
    repo = "plain/client-signed"
    env.run(
        ["env", f"GNUPGHOME={home}",
         *env.skopeo(
             "--registries.d", str(registries_d(env, env.registry_host)),
             "copy", "--quiet", "--dest-tls-verify=false",
             "--sign-by", fingerprint,
             layout.ref("single"), env.docker(repo, "v1"),
         )],
    )  # fmt: skip
    digest = layout.single.manifest.digest
    stored = signatures(http, repo, digest)
    assert len(stored) == 1, "skopeo's signature was not stored"

    # Signed by another key than the registry's: refused.
    strict = policy(env, "registry", env.registry_host, registry_key)
    refused = pull(
        env, strict, env.docker(repo, "v1"), scratch / "refused", expect_failure=True
    )
    assert "signature" in refused.stderr.lower()

    # A policy trusting the client's key accepts it.
    trusting = policy(env, "client", env.registry_host, client_key)
    pull(env, trusting, env.docker(repo, "v1"), scratch / "accepted")
    assert (scratch / "accepted" / "manifest.json").is_file()

    # Signing again stores nothing new (the same signature is not added twice).
    env.run(
        ["env", f"GNUPGHOME={home}",
         *env.skopeo(
             "--registries.d", str(registries_d(env, env.registry_host)),
             "copy", "--quiet", "--dest-tls-verify=false",
             layout.ref("single"), env.docker(repo, "v1"),
         )],
    )  # fmt: skip
    assert len(signatures(http, repo, digest)) == 1


def test_signature_copied_to_another_repository_is_refused(
    env: ContainersEnv,
    http: httpx.Client,
    layout: Layout,
    registry_key: Path,
    scratch: Path,
) -> None:
    source, copy_to = "signed/original", "plain/copied"
    digest = push(env, layout, source)
    found = wait_for_signatures(http, source, digest, 1)
    assert len(found) == 1
    push(env, layout, copy_to)
    # Anyone with push rights may store a signature; the identity inside it still
    # names the original repository.
    stored = http.put(
        f"/extensions/v2/{copy_to}/signatures/{digest}",
        json={**found[0], "name": f"{digest}@{'0' * 32}"},
    )
    assert stored.status_code == 201, stored.text
    assert len(signatures(http, copy_to, digest)) == 1

    strict = policy(env, "registry", env.registry_host, registry_key)
    refused = pull(
        env, strict, env.docker(copy_to, "v1"), scratch / "pulled", expect_failure=True
    )
    assert "signature" in refused.stderr.lower()
    # The original still verifies.
    pull(env, strict, env.docker(source, "v1"), scratch / "original")


def test_podman_pull_accepts_signed_and_refuses_unsigned(
    env: ContainersEnv,
    http: httpx.Client,
    layout: Layout,
    registry_key: Path,
) -> None:
    require("podman")
    require_root("podman with a private graphroot")
    signed, unsigned = "signed/podman", "plain/podman"
    digest = push(env, layout, signed)
    push(env, layout, unsigned)
    assert len(wait_for_signatures(http, signed, digest, 1)) == 1
    # podman reads registries.d from the private $HOME/.config/containers.
    user_dir = env.root / "home" / ".config" / "containers" / "registries.d"
    shutil.copy(registries_d(env, env.registry_host) / "cargohold.yaml", user_dir)
    strict = policy(env, "podman", env.registry_host, registry_key)

    def podman_pull(repo: str, *, expect_failure: bool = False) -> str:
        return env.run(
            env.podman(
                "pull", "--quiet", "--tls-verify=false",
                "--signature-policy", str(strict), env.image(repo, "v1"),
            ),
            expect_failure=expect_failure,
        ).stderr  # fmt: skip

    podman_pull(signed)
    assert "signature" in podman_pull(unsigned, expect_failure=True).lower()
