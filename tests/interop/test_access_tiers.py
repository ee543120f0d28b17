"""Real clients against token auth.

Logins, the two tiers, pull tokens, a pull-through cache.

cargohold runs with authentication on (``secure_registry``). Each test prepares what it
needs (users, organization, pull tokens, visibility) through ``admin.administer``.
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import uuid
import warnings
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.prerequisites import require, skip_or_fail

from .admin import ROOT, administer
from .conftest import ADMIN_PASSWORD, ADMIN_USER
from .servers import Process, _clean_environ, free_port, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from cargohold.registry.admin import AdminService

    from .clients import ContainersEnv
    from .conftest import Layout
    from .servers import RegistryServer

pytestmark = [pytest.mark.interop, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _clients() -> None:
    require("skopeo", "podman")


@pytest.fixture
def org() -> str:
    return f"org{uuid.uuid4().hex[:8]}"


def login(env: ContainersEnv, tool: str, host: str, user: str, password: str) -> None:
    subprocess.run(
        [
            tool,
            "login",
            "--tls-verify=false",
            "--username",
            user,
            "--password-stdin",
            host,
        ],
        input=password,
        text=True,
        env=env.env(),
        check=True,
        capture_output=True,
        timeout=60,
    )


def logout(env: ContainersEnv, tool: str, host: str) -> None:
    subprocess.run(
        [tool, "logout", host],
        env=env.env(),
        check=False,
        capture_output=True,
        timeout=60,
    )


def push_layout(
    env: ContainersEnv, layout: Layout, tag: str, dest: str, *creds: str
) -> None:
    env.run(
        env.skopeo(
            "copy", "--quiet", "--dest-tls-verify=false", *creds, layout.ref(tag), dest
        )
    )


def inspect_digest(env: ContainersEnv, ref: str, *creds: str) -> str:
    out = env.run(env.skopeo("inspect", "--tls-verify=false", *creds, ref)).stdout
    return str(json.loads(out)["Digest"])


def publish(env: ContainersEnv, layout: Layout, repo: str) -> None:
    """Push ``latest`` and ``3.12.1`` (different images) as the administrator."""
    creds = f"--dest-creds={ADMIN_USER}:{ADMIN_PASSWORD}"
    push_layout(env, layout, "single", env.docker(repo, "latest"), creds)
    push_layout(env, layout, "multi", env.docker(repo, "3.12.1"), creds, "--all")


def test_podman_login_push_and_pull(
    secure_registry: RegistryServer, secure_env: ContainersEnv, layout: Layout, org: str
) -> None:
    data = secure_registry.data_dir

    async def setup(admin):
        await admin.create_organization(ROOT, org, client="test")
        await admin.create_user(ROOT, "paula", "paula-password-1", client="test")
        await admin.set_member(ROOT, org, "paula", "pusher", client="test")

    administer(data, setup)
    host, repo = secure_registry.host, f"{org}/app"
    login(secure_env, "podman", host, "paula", "paula-password-1")
    try:
        target = f"{host}/{repo}:1.0"
        image_id = secure_env.run(
            ["podman", "pull", "--quiet", layout.ref("single")]
        ).stdout.strip()
        secure_env.run(["podman", "tag", image_id, target])
        secure_env.run(["podman", "push", "--quiet", "--tls-verify=false", target])
        secure_env.run(["podman", "rmi", "--force", target])
        secure_env.run(["podman", "pull", "--quiet", "--tls-verify=false", target])
        listed = secure_env.run(
            ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"]
        )
        assert f"{host}/{repo}:1.0" in listed.stdout
    finally:
        logout(secure_env, "podman", host)
    # Without the login the same pull is refused.
    failed = secure_env.run(
        ["podman", "pull", "--tls-verify=false", f"{host}/{repo}:1.0"],
        expect_failure=True,
    )
    assert "unauthorized" in (failed.stderr + failed.stdout).lower()


def test_skopeo_login_and_copy(
    secure_registry: RegistryServer,
    secure_env: ContainersEnv,
    layout: Layout,
    org: str,
    scratch: Path,
) -> None:
    host, repo = secure_registry.host, f"{org}/tool"
    login(secure_env, "skopeo", host, ADMIN_USER, ADMIN_PASSWORD)
    try:
        push_layout(
            secure_env, layout, "multi", secure_env.docker(repo, "2.0"), "--all"
        )
        secure_env.run(
            secure_env.skopeo(
                "copy",
                "--quiet",
                "--all",
                "--src-tls-verify=false",
                secure_env.docker(repo, "2.0"),
                f"oci:{scratch / 'out'}:2.0",
            )
        )
    finally:
        logout(secure_env, "skopeo", host)
    index = json.loads((scratch / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == layout.multi.index.digest


def test_anonymous_starter_pull_and_refused_version(
    secure_registry: RegistryServer,
    secure_env: ContainersEnv,
    layout: Layout,
    org: str,
    scratch: Path,
) -> None:
    repo = f"{org}/python"
    publish(secure_env, layout, repo)

    async def make_public(admin):
        await admin.set_repository(
            ROOT, repo, visibility="public", starter_tags=None, client="test"
        )

    administer(secure_registry.data_dir, make_public)
    secure_env.run(
        secure_env.skopeo(
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            secure_env.docker(repo, "latest"),
            f"oci:{scratch / 'starter'}:latest",
        )
    )
    index = json.loads((scratch / "starter" / "index.json").read_text())
    pushed = inspect_digest(
        secure_env,
        secure_env.docker(repo, "latest"),
        f"--creds={ADMIN_USER}:{ADMIN_PASSWORD}",
    )
    assert index["manifests"][0]["digest"] == pushed
    refused = secure_env.run(
        secure_env.skopeo(
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            secure_env.docker(repo, "3.12.1"),
            f"oci:{scratch / 'version'}:v",
        ),
        expect_failure=True,
    )
    assert "unauthorized" in refused.stderr.lower() or "401" in refused.stderr
    # The refusal is the challenge a client can act on: log in.
    response = httpx.get(f"{secure_registry.url}/v2/{repo}/manifests/3.12.1")
    assert response.status_code == 401
    assert "Bearer realm=" in response.headers["WWW-Authenticate"]


def test_tag_limited_owner_with_skopeo(
    secure_registry: RegistryServer,
    secure_env: ContainersEnv,
    layout: Layout,
    org: str,
) -> None:
    """grants add ORG user:tess ORG/app owner --tag 'dev-*', driven by skopeo."""
    repo = f"{org}/app"
    admin_creds = f"--creds={ADMIN_USER}:{ADMIN_PASSWORD}"
    push_layout(
        secure_env,
        layout,
        "single",
        secure_env.docker(repo, "prod-1"),
        f"--dest-creds={ADMIN_USER}:{ADMIN_PASSWORD}",
    )

    async def setup(admin):
        await admin.create_organization(ROOT, org, client="test")
        await admin.create_user(ROOT, "tess", "tess-password-1", client="test")
        await admin.add_grant(
            ROOT,
            principal="user:tess",
            organization=org,
            repository=repo,
            role="owner",
            tags=["dev-*"],
            client="test",
        )

    administer(secure_registry.data_dir, setup)
    prod = inspect_digest(secure_env, secure_env.docker(repo, "prod-1"), admin_creds)
    tess = "tess:tess-password-1"
    # A multi-arch push (children by digest, then the tagged index), and an image whose
    # layers so far only prod-1 reaches: both go through.
    push_layout(
        secure_env,
        layout,
        "multi",
        secure_env.docker(repo, "dev-1"),
        f"--dest-creds={tess}",
        "--all",
    )
    push_layout(
        secure_env,
        layout,
        "single",
        secure_env.docker(repo, "dev-2"),
        f"--dest-creds={tess}",
    )

    def delete(tag: str, *, refused: bool) -> None:
        secure_env.run(
            secure_env.skopeo(
                "delete",
                "--tls-verify=false",
                f"--creds={tess}",
                secure_env.docker(repo, tag),
            ),
            expect_failure=refused,
        )

    delete("prod-1", refused=True)
    # dev-2 is the same manifest as prod-1: deleting it by digest would remove prod-1.
    dev_2 = secure_env.docker(repo, "dev-2")
    assert inspect_digest(secure_env, dev_2, f"--creds={tess}") == prod
    delete("dev-2", refused=True)
    delete("dev-1", refused=False)
    assert (
        inspect_digest(secure_env, secure_env.docker(repo, "prod-1"), admin_creds)
        == prod
    )


def _pull_token(data_dir: Path, org: str) -> str:
    async def create(admin: AdminService) -> str:
        if org not in await admin.organizations(ROOT):
            await admin.create_organization(ROOT, org, client="test")
        created = await admin.create_pull_token(
            ROOT, org, description="interop", client="test"
        )
        return created.secret

    return administer(data_dir, create)


def test_pull_token_with_skopeo(
    secure_registry: RegistryServer,
    secure_env: ContainersEnv,
    layout: Layout,
    org: str,
) -> None:
    repo = f"{org}/prod"
    publish(secure_env, layout, repo)
    secret = _pull_token(secure_registry.data_dir, org)
    creds = f"--creds=ci:{secret}"
    digest = inspect_digest(secure_env, secure_env.docker(repo, "3.12.1"), creds)
    assert digest == layout.multi.index.digest
    # Read-only: pushing with it is refused.
    refused = secure_env.run(
        secure_env.skopeo(
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"--dest-creds=ci:{secret}",
            layout.ref("single"),
            secure_env.docker(repo, "pushed"),
        ),
        expect_failure=True,
    )
    assert refused.returncode != 0


def test_oras_with_credentials(
    secure_registry: RegistryServer,
    tmp_path: Path,
    org: str,
) -> None:
    try:
        import oras.client as oras_client  # type: ignore[import-untyped]
    except ImportError:
        skip_or_fail("the oras package is not installed: pip install -e '.[test]'")
    repo = f"{org}/artifacts"
    target = f"{secure_registry.host}/{repo}:v1"
    artifact = tmp_path / "notes.txt"
    artifact.write_text("release notes\n")

    def client(actions: str) -> oras_client.OrasClient:
        # oras-py renews its token only on 403, while token auth answers an
        # insufficient scope with 401 (as the spec says): hand it a token for the
        # scope it is about to use, obtained with its credentials.
        response = httpx.get(
            f"{secure_registry.url}/token",
            params={"service": "cargohold", "scope": f"repository:{repo}:{actions}"},
            auth=(ADMIN_USER, ADMIN_PASSWORD),
        )
        c = oras_client.OrasClient(hostname=secure_registry.host, insecure=True)
        with warnings.catch_warnings():
            # oras-py's login tries a Docker engine first and leaks the socket of
            # that failed attempt; collect it here, not inside some later test.
            warnings.simplefilter("ignore", ResourceWarning)
            c.login(username=ADMIN_USER, password=ADMIN_PASSWORD, tls_verify=False)
            gc.collect()
        c.auth.set_token_auth(response.json()["token"])
        return c

    client("pull,push").push(
        target=target, files=[str(artifact)], disable_path_validation=True
    )
    out = tmp_path / "pulled"
    pulled = client("pull").pull(target=target, outdir=str(out))
    assert [p for p in map(str, pulled) if p.endswith("notes.txt")]
    assert (out / "notes.txt").read_text() == "release notes\n"
    assert "v1" in client("pull").get_tags(f"{secure_registry.host}/{repo}")


@pytest.fixture
def proxy_cache(
    secure_registry: RegistryServer,
    tmp_path: Path,
    org: str,
) -> Iterator[tuple[str, str]]:
    """Debian's docker-registry as a pull-through cache of cargohold.

    It authenticates upstream with a pull token.
    """
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        require("docker-registry")
    secret = _pull_token(secure_registry.data_dir, org)
    port = free_port()
    config = tmp_path / "proxy.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: info}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'cache'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
        "proxy:\n"
        f"  remoteurl: {secure_registry.url}\n"
        "  username: pull-token\n"
        f"  password: {secret}\n"
    )
    process = Process(
        [str(binary), "serve", str(config)],
        tmp_path / "proxy.log",
        env=_clean_environ(),
    )
    process.start()

    def answers() -> bool:
        try:
            return (
                httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200
            )
        except httpx.HTTPError:
            return False

    try:
        wait_until(process, answers, "pull-through cache")
        yield f"127.0.0.1:{port}", secret
    finally:
        process.stop()


def test_reference_registry_as_pull_through_cache(
    secure_registry: RegistryServer,
    secure_env: ContainersEnv,
    layout: Layout,
    org: str,
    proxy_cache: tuple[str, str],
    scratch: Path,
) -> None:
    repo = f"{org}/cached"
    publish(secure_env, layout, repo)
    proxy, _ = proxy_cache
    # The cache's own clients pull anonymously; the cache authenticates upstream.
    secure_env.run(
        secure_env.skopeo(
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            f"docker://{proxy}/{repo}:3.12.1",
            f"oci:{scratch / 'via-proxy'}:v",
            "--all",
        )
    )
    index = json.loads((scratch / "via-proxy" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == layout.multi.index.digest
    # The production tag is not public: straight from cargohold, anonymously,
    # it is refused.
    direct = httpx.get(f"{secure_registry.url}/v2/{repo}/manifests/3.12.1")
    assert direct.status_code == 401
