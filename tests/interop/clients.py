"""Client tools: finding them, running them, and a private containers environment.

Owns: the skip-or-fail rule for missing tools, subprocess calls with timeouts and
readable failures, and the config files that skopeo, podman and buildah read
(registries.conf, storage.conf, containers.conf, policy.json), written under a
private directory and pointed to by environment variables.

Must not: read or write ``/etc/containers`` or the system storage in
``/var/lib/containers``; every path the tools may write is under ``root``.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.prerequisites import skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

TOOL_TIMEOUT = 300


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        skip_or_fail(f"{what} needs root")


def run(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = TOOL_TIMEOUT,
    expect_failure: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a client; on an unexpected exit status, fail with its output."""
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if (result.returncode != 0) != expect_failure:
        expected = "a failure" if expect_failure else "success"
        pytest.fail(
            f"expected {expected}: {' '.join(argv)}\nexit {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result


def run_json(argv: Sequence[str], *, env: dict[str, str] | None = None) -> object:
    return json.loads(run(argv, env=env).stdout)


@dataclass
class ContainersEnv:
    """Private config and storage for the containers/* tools (skopeo, podman, buildah).

    registries.conf and policy.json are found through ``$HOME/.config/containers``,
    storage.conf and containers.conf through ``CONTAINERS_*``; ``TMPDIR`` keeps big
    temporary files here too (they default to ``/var/tmp``). Not set on purpose:
    ``CONTAINERS_REGISTRIES_CONF``. With it, podman 4.3 and buildah 1.28 also read
    the system drop-ins in ``/etc/containers/registries.conf.d``, and skopeo ignores
    it; with only ``$HOME``, all three read nothing from ``/etc/containers``.
    """

    root: Path
    registry_host: str

    @property
    def policy(self) -> Path:
        return self.root / "policy.json"

    @property
    def graphroot(self) -> Path:
        return self.root / "storage"

    def write(self) -> None:
        home = self.root / "home"
        user_config = home / ".config" / "containers"
        for directory in (
            user_config / "registries.conf.d",
            user_config / "registries.d",
            self.root / "run",
            self.root / "tmp",
            self.graphroot,
            self.root / "runroot",
            self.root / "networks",
        ):
            directory.mkdir(parents=True, exist_ok=True)
        (self.root / "run").chmod(0o700)
        registries = (
            "unqualified-search-registries = []\n"
            'short-name-mode = "disabled"\n\n'
            "[[registry]]\n"
            f'location = "{self.registry_host}"\n'
            "insecure = true\n"
        )
        storage = (
            "[storage]\n"
            'driver = "vfs"\n'
            f'graphroot = "{self.graphroot}"\n'
            f'runroot = "{self.root / "runroot"}"\n'
        )
        engine = (
            "[engine]\n"
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.root / "events.log"}"\n'
            f'tmp_dir = "{self.root / "libpod-tmp"}"\n'
            f'static_dir = "{self.graphroot / "libpod"}"\n'
            f'volume_path = "{self.graphroot / "volumes"}"\n'
            "[network]\n"
            # netavark keeps state in a fixed /run/containers/networks; CNI does not.
            'network_backend = "cni"\n'
            f'network_config_dir = "{self.root / "networks"}"\n'
        )
        policy = json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
        for path, text in (
            (user_config / "registries.conf", registries),
            (self.root / "storage.conf", storage),
            (user_config / "storage.conf", storage),
            (self.root / "containers.conf", engine),
            (user_config / "containers.conf", engine),
            (self.policy, policy),
            (user_config / "policy.json", policy),
            (self.root / "auth.json", '{"auths": {}}'),
        ):
            path.write_text(text)

    def env(self) -> dict[str, str]:
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CONTAINERS_", "REGISTRY_AUTH", "XDG_", "DOCKER_"))
        }
        return inherited | {
            "HOME": str(self.root / "home"),
            "XDG_CONFIG_HOME": str(self.root / "home" / ".config"),
            "XDG_DATA_HOME": str(self.root / "home" / ".local" / "share"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "TMPDIR": str(self.root / "tmp"),
            "CONTAINERS_STORAGE_CONF": str(self.root / "storage.conf"),
            "CONTAINERS_CONF": str(self.root / "containers.conf"),
            "REGISTRY_AUTH_FILE": str(self.root / "auth.json"),
        }

    def image(self, repo: str, tag: str) -> str:
        """``host:port/repo:tag`` on the registry under test."""
        return f"{self.registry_host}/{repo}:{tag}"

    def docker(self, repo: str, tag: str | None = None) -> str:
        """The ``docker://`` transport reference that skopeo and buildah push to."""
        suffix = f":{tag}" if tag else ""
        return f"docker://{self.registry_host}/{repo}{suffix}"

    def skopeo(self, *args: str) -> list[str]:
        return ["skopeo", "--policy", str(self.policy), *args]

    def podman(self, *args: str) -> list[str]:
        return ["podman", *args]

    def buildah(self, *args: str) -> list[str]:
        return ["buildah", *args]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = TOOL_TIMEOUT,
        expect_failure: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        return run(argv, env=self.env(), timeout=timeout, expect_failure=expect_failure)

    def run_json(self, argv: Sequence[str]) -> object:
        return json.loads(self.run(argv).stdout)
