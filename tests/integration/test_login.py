"""``cargohold login``/``logout`` against a real ``cargohold serve`` with token auth.

The command runs in-process (click's ``CliRunner``) and talks HTTP to a real server on a
loopback port: the ``/v2/`` challenge, then ``GET /token`` with Basic credentials. Every
client file lives under ``tmp_path``: ``HOME``, ``XDG_RUNTIME_DIR``, ``DOCKER_CONFIG``
and ``REGISTRY_AUTH_FILE`` are pointed there, never at the real user's files.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner, Result

from tests.integration.serverproc import ServerProcess
from tests.prerequisites import require

if TYPE_CHECKING:
    from collections.abc import Iterator

from cargohold.cli import main

USER = "alice"
PASSWORD = "correct horse battery"  # noqa: S105 - a test credential
HELPER = "docker-credential-cargohold"


class TokenAuthServer(ServerProcess):
    """``ServerProcess``, ready when ``/v2/`` answers at all (401 with auth on)."""

    def _answers(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/v2/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code in {200, 401}

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_server(root: Path, **settings: str) -> TokenAuthServer:
    server = TokenAuthServer(root / "data", root / "server.log", settings=settings)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenAuthServer]:
    """One token-auth registry for the module, whose first administrator is alice."""
    server = start_server(
        tmp_path_factory.mktemp("registry"),
        CARGOHOLD_AUTH_MODE="token",
        CARGOHOLD_ADMIN_USER=USER,
        CARGOHOLD_ADMIN_PASSWORD=PASSWORD,
    )
    yield server
    server.stop()


@pytest.fixture
def open_registry(tmp_path: Path) -> Iterator[TokenAuthServer]:
    server = start_server(tmp_path / "open", CARGOHOLD_AUTH_MODE="none")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def client_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME, runtime dir and docker config dir; no auth-file override."""
    root = tmp_path / "client"
    (root / "home").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(root / "home"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(root / "run"))
    monkeypatch.setenv("DOCKER_CONFIG", str(root / "docker"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("CARGOHOLD_CREDENTIALS_FILE", str(root / "helper.json"))
    return root


def containers_file(root: Path) -> Path:
    return root / "run" / "containers" / "auth.json"


def docker_file(root: Path) -> Path:
    return root / "docker" / "config.json"


def auth_of(path: Path, host: str) -> str | None:
    entry = json.loads(path.read_text())["auths"].get(host)
    return None if entry is None else entry.get("auth")


def encoded(user: str = USER, password: str = PASSWORD) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cargohold(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def login(host: str, *args: str, password: str = PASSWORD) -> Result:
    return cargohold(
        "login", host, "-u", USER, "--password-stdin", *args, stdin=password + "\n"
    )


# --- login ----------------------------------------------------------------------------


def test_login_stores_for_podman_and_docker(
    registry: TokenAuthServer, client_files: Path
) -> None:
    result = login(registry.host)
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("Login Succeeded")
    assert "plain HTTP" in result.output  # https was tried first, then loopback HTTP
    for path in (containers_file(client_files), docker_file(client_files)):
        assert auth_of(path, registry.host) == encoded(), path
        assert str(path) in result.output
        assert mode(path) == 0o600
        assert mode(path.parent) == 0o700


def test_login_prompts_for_what_is_missing(
    registry: TokenAuthServer, client_files: Path
) -> None:
    result = cargohold("login", registry.host, stdin=f"{USER}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Username:" in result.output
    assert "Password:" in result.output
    assert PASSWORD not in result.output  # hidden input
    assert auth_of(containers_file(client_files), registry.host) == encoded()


def test_wrong_password_is_refused_and_nothing_is_written(
    registry: TokenAuthServer, client_files: Path
) -> None:
    result = login(registry.host, password="not the password")  # noqa: S106
    assert result.exit_code == 1
    assert "incorrect username or password" in result.output
    assert not containers_file(client_files).exists()
    assert not docker_file(client_files).exists()


def test_login_keeps_other_entries_and_settings(
    registry: TokenAuthServer, client_files: Path
) -> None:
    stale_aliases = {f"http://{registry.host}": {"auth": encoded("old", "old")}}
    docker_before = {
        "auths": {"quay.io": {"auth": encoded("q", "q")}, **stale_aliases},
        "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
        "detachKeys": "ctrl-e,e",
    }
    containers_before = {
        "auths": {f"{registry.host}/team": {"auth": encoded("t", "t")}}
    }
    docker_file(client_files).parent.mkdir()
    docker_file(client_files).write_text(json.dumps(docker_before))
    containers_file(client_files).parent.mkdir(parents=True)
    containers_file(client_files).write_text(json.dumps(containers_before))

    assert login(f"http://{registry.host}/").exit_code == 0  # URL spelling normalised

    docker_after = json.loads(docker_file(client_files).read_text())
    assert docker_after == {
        **docker_before,
        "auths": {
            "quay.io": {"auth": encoded("q", "q")},
            registry.host: {"auth": encoded()},
        },
    }
    containers_after = json.loads(containers_file(client_files).read_text())
    assert containers_after["auths"] == {
        f"{registry.host}/team": {"auth": encoded("t", "t")},  # a scoped login stays
        registry.host: {"auth": encoded()},
    }


def test_authfile_option_and_no_docker(
    registry: TokenAuthServer, client_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = client_files / "explicit" / "auth.json"
    result = login(registry.host, "--authfile", str(explicit), "--no-docker")
    assert result.exit_code == 0, result.output
    assert auth_of(explicit, registry.host) == encoded()
    assert not containers_file(client_files).exists()
    assert not docker_file(client_files).exists()

    from_env = client_files / "env" / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(from_env))
    assert login(registry.host, "--no-docker").exit_code == 0
    assert auth_of(from_env, registry.host) == encoded()


def test_login_to_a_registry_without_auth(
    open_registry: TokenAuthServer, client_files: Path
) -> None:
    result = login(open_registry.host)
    assert result.exit_code == 0, result.output
    assert "does not ask for credentials" in result.output
    assert auth_of(containers_file(client_files), open_registry.host) == encoded()


def test_unreachable_registry(client_files: Path) -> None:
    from tests.integration.serverproc import free_port

    result = login(f"127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert "cannot reach" in result.output
    assert not containers_file(client_files).exists()


# --- docker credential helpers --------------------------------------------------------


@pytest.fixture
def helper_on_path(monkeypatch: pytest.MonkeyPatch) -> str:
    """The installed helper, found on PATH as docker finds it."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / HELPER).exists(), f"{HELPER} missing: run `pip install -e .`"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return str(bin_dir / HELPER)


def test_login_hands_the_secret_to_the_configured_helper(
    registry: TokenAuthServer, client_files: Path, helper_on_path: str
) -> None:
    docker_file(client_files).parent.mkdir()
    docker_file(client_files).write_text(json.dumps({"credsStore": "cargohold"}))

    result = login(registry.host)
    assert result.exit_code == 0, result.output
    assert f"with {HELPER}" in result.output
    docker_text = docker_file(client_files).read_text()
    assert PASSWORD not in docker_text
    assert encoded() not in docker_text
    assert json.loads(docker_text) == {
        "credsStore": "cargohold",
        "auths": {registry.host: {}},  # as docker writes it: the login, no secret
    }
    got = subprocess.run(
        [helper_on_path, "get"], input=registry.host, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(got.stdout) == {
        "ServerURL": registry.host,
        "Username": USER,
        "Secret": PASSWORD,
    }
    # The containers file names no helper, so it holds the credentials itself.
    assert auth_of(containers_file(client_files), registry.host) == encoded()

    assert cargohold("logout", registry.host).exit_code == 0
    gone = subprocess.run(
        [helper_on_path, "get"], input=registry.host, capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip
    assert (gone.returncode, gone.stdout.strip()) == (
        1,
        "credentials not found in native keychain",
    )


def test_a_go_client_reads_the_secret_through_our_helper(
    registry: TokenAuthServer, client_files: Path, helper_on_path: str
) -> None:
    """skopeo (containers/image, docker-credential-helpers' client) asks the helper.

    containers/image honours a per-registry ``credHelpers`` entry (not ``credsStore``);
    with ``$DOCKER_CONFIG`` set, skopeo reads only that config.
    """
    require("skopeo")
    skopeo = shutil.which("skopeo")
    assert skopeo is not None
    config = {"credHelpers": {registry.host: "cargohold"}}
    docker_file(client_files).parent.mkdir()
    docker_file(client_files).write_text(json.dumps(config))
    assert login(registry.host).exit_code == 0
    assert json.loads(docker_file(client_files).read_text())["auths"] == {
        registry.host: {}
    }

    def skopeo_login() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [skopeo, "login", "--get-login", registry.host], capture_output=True,
            text=True, check=False, timeout=60,
        )  # fmt: skip

    shown = skopeo_login()
    assert (shown.returncode, shown.stdout.strip()) == (0, USER), shown.stderr
    Path(os.environ["CARGOHOLD_CREDENTIALS_FILE"]).unlink()  # the helper's store
    assert skopeo_login().returncode != 0  # so the login came from the helper


# --- logout ---------------------------------------------------------------------------


def test_logout_removes_both_entries(
    registry: TokenAuthServer, client_files: Path
) -> None:
    other: dict[str, Any] = {"auths": {"quay.io": {"auth": encoded("q", "q")}}}
    docker_file(client_files).parent.mkdir()
    docker_file(client_files).write_text(json.dumps(other))
    assert login(registry.host).exit_code == 0

    result = cargohold("logout", registry.host)
    assert result.exit_code == 0, result.output
    assert "Removed credentials" in result.output
    assert auth_of(containers_file(client_files), registry.host) is None
    assert json.loads(docker_file(client_files).read_text()) == other

    again = cargohold("logout", registry.host)
    assert again.exit_code == 1
    assert f"not logged in to {registry.host}" in again.output


# --- a real client reads what login wrote ---------------------------------------------


def test_skopeo_reads_the_stored_login(
    registry: TokenAuthServer, client_files: Path
) -> None:
    """skopeo finds the login in each file it would use.

    With ``$DOCKER_CONFIG`` set, podman, skopeo and buildah (containers/common
    ``GetDefaultAuthFile``) read only ``$DOCKER_CONFIG/config.json``; without it, the
    ``$XDG_RUNTIME_DIR`` file first.
    """
    require("skopeo")
    skopeo = shutil.which("skopeo")
    assert skopeo is not None
    assert login(registry.host).exit_code == 0
    with_docker_config = dict(os.environ)
    without_docker_config = {
        k: v for k, v in os.environ.items() if k != "DOCKER_CONFIG"
    }
    for env in (with_docker_config, without_docker_config):
        shown = subprocess.run(
            [skopeo, "login", "--get-login", registry.host], env=env,
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert (shown.returncode, shown.stdout.strip()) == (0, USER), shown.stderr
    # And only from the file login wrote: with it gone, skopeo has no login.
    containers_file(client_files).unlink()
    shown = subprocess.run(
        [skopeo, "login", "--get-login", registry.host], env=without_docker_config,
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert shown.returncode != 0
