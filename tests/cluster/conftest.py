"""A whole cluster (``scripts/cluster.sh``): PostgreSQL, two replicas, nginx in front.

One cluster per session; tests that kill a replica start it again before they end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.registry import RegistryClient
from tests.prerequisites import require, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.sh"
REPLICAS = ("replica-1", "replica-2")


@dataclass(frozen=True)
class Cluster:
    url: str
    admin: tuple[str, str]
    replicas: dict[str, str]  # replica id -> its own URL (behind nginx's back)
    database_url: str
    state: Path
    env: dict[str, str]

    def client(self, base: str | None = None) -> RegistryClient:
        return RegistryClient(base or self.url, self.admin)

    def kill(self, replica: str) -> None:
        """kill -9 of the replica's whole process group (granian main and workers)."""
        pid = int((self.state / f"{replica}.pid").read_text())
        os.killpg(pid, signal.SIGKILL)

    def restart(self, replica: str) -> None:
        script(self.env, "restart", replica.removeprefix("replica-"))

    def cli(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        """``cargohold <args>`` on the cluster's database and storage."""
        data = self.state / "cli"
        data.mkdir(exist_ok=True)
        env = self.env | {
            "CARGOHOLD_DATABASE_URL": self.database_url,
            "CARGOHOLD_STORAGE_ROOT": str(self.state / "shared" / "storage"),
            "CARGOHOLD_SIGNING_KEY_DIR": str(self.state / "shared" / "signing"),
            **settings,
        }
        return subprocess.run(
            [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            check=True,
        )


def script(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cluster.sh {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require("nginx")
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        skip_or_fail("Debian's PostgreSQL is not installed; run scripts/setup.sh")
    state = tmp_path_factory.mktemp("cluster") / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
    env |= {
        "CLUSTER_DIR": str(state),
        "CLUSTER_PYTHON": sys.executable,
        "CLUSTER_STORAGE": os.environ.get("CLUSTER_STORAGE", "s3"),
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
        ),
    }
    try:
        printed = script(env, "up")
    except BaseException:
        script(env, "down")
        raise
    values = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    try:
        yield Cluster(
            url=values["URL"],
            admin=(values["ADMIN_USER"], values["ADMIN_PASSWORD"]),
            replicas={
                "replica-1": values["REPLICA_1"],
                "replica-2": values["REPLICA_2"],
            },
            database_url=values["DATABASE_URL"],
            state=state,
            env=env,
        )
    finally:
        script(env, "down")
