"""Processes the interop tests run: the registry under test and a private containerd.

Owns: choosing the registry target, free ports, config files in a private directory,
bounded readiness waits, and termination. Every process started here is stopped by
the same object that started it.

Must not: touch system configuration or services (no ``/etc``, no ``/run/containerd``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.watch5xx import server_log_errors

TARGET_ENV = "CARGOHOLD_INTEROP_TARGET"
TARGETS = ("cargohold", "reference", "cluster")
START_TIMEOUT = float(os.environ.get("CARGOHOLD_INTEROP_START_TIMEOUT", "60"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def selected_target() -> str:
    """``cargohold`` unless a developer asks for the reference registry or for a
    ``scripts/cluster.sh`` cluster (two replicas behind nginx; not on CI)."""
    target = os.environ.get(TARGET_ENV, "cargohold")
    if target not in TARGETS:
        msg = f"{TARGET_ENV}={target!r}: expected one of {', '.join(TARGETS)}"
        raise ValueError(msg)
    if target != "cargohold" and os.environ.get("CI") == "true":
        msg = f"{TARGET_ENV}={target} is for development; CI tests cargohold"
        raise ValueError(msg)
    return target


def _clean_environ() -> dict[str, str]:
    """The test process's environment without any ``CARGOHOLD_*`` settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Process:
    """A child process with its log file, stopped by ``stop()``."""

    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=_clean_environ)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    def exited(self) -> int | None:
        assert self.proc is not None
        return self.proc.poll()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, to the process group this object started.

        The group takes the server's own children too (granian forks workers).
        """
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def failure(self, what: str) -> str:
        return f"{what}\ncommand: {' '.join(self.argv)}\nlog tail:\n{_tail(self.log)}"


def wait_until(ready: Process, check: object, what: str) -> None:
    """Poll ``check()`` until it is true; fail if the process dies or time runs out."""
    assert callable(check)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if ready.exited() is not None:
            raise RuntimeError(ready.failure(f"{what} exited with {ready.exited()}"))
        if check():
            return
        time.sleep(0.1)
    ready.stop()
    raise RuntimeError(ready.failure(f"{what} not ready after {START_TIMEOUT:.0f}s"))


@dataclass
class RegistryServer:
    """The registry under test, on a free loopback port with a private data dir."""

    target: str
    workdir: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None
    # Settings for cargohold, as CARGOHOLD_* variables (e.g. the auth mode).
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """``host:port``, the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def argv(self) -> list[str]:
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        if self.target == "cargohold":
            return [
                sys.executable, "-m", "cargohold", "serve",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(data_dir),
            ]  # fmt: skip
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise RuntimeError("reference target needs docker-registry (apt)")
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: info}\n"
            f"storage:\n  filesystem: {{rootdirectory: {data_dir}}}\n"
            "  delete: {enabled: true}\n"
            f"http: {{addr: '{self.host}'}}\n"
        )
        return [binary, "serve", str(config)]

    def _answers(self) -> bool:
        try:
            # 401: token auth is on, and the registry is answering.
            return httpx.get(f"{self.url}/v2/", timeout=2.0).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    @property
    def log_paths(self) -> list[Path]:
        if self.target == "cluster":
            logs = self.workdir / "cluster" / "logs"
            return [logs / "replica-1.log", logs / "replica-2.log"]
        return [self.workdir / "server.log"]

    @property
    def log_path(self) -> Path:
        return self.log_paths[0]

    def log_size(self) -> list[int]:
        """Where each log ends now: pass it to ``errors_since`` after the test."""
        sizes = []
        for path in self.log_paths:
            try:
                sizes.append(path.stat().st_size)
            except FileNotFoundError:
                sizes.append(0)
        return sizes

    def errors_since(self, offsets: list[int]) -> list[str]:
        """Unhandled errors and 5xx answers cargohold logged after ``offsets``."""
        if self.target == "reference":
            return []  # another registry's log has another shape
        errors = []
        for path, offset in zip(self.log_paths, offsets, strict=True):
            with path.open("rb") as log:
                log.seek(offset)
                errors += server_log_errors(log.read().decode(errors="replace"))
        return errors

    def start(self) -> None:
        if self.target == "cluster":
            self._cluster("up")
            return
        # The access log on: ``errors_since`` reads it for 5xx answers.
        access = {"CARGOHOLD_LOG_ACCESS": "true"} if self.target == "cargohold" else {}
        self.process = Process(
            self.argv(),
            self.log_path,
            env=_clean_environ() | access | self.settings,
        )
        self.process.start()
        wait_until(self.process, self._answers, f"{self.target} registry")

    def stop(self) -> None:
        if self.target == "cluster":
            self._cluster("down")
        if self.process is not None:
            self.process.stop()

    def _cluster(self, command: str) -> None:
        """``scripts/cluster.sh up|down`` with this server's settings on both replicas;
        ``port`` becomes the load balancer's."""
        root = Path(__file__).resolve().parents[2]
        env = (
            _clean_environ()
            | self.settings
            | {
                "CARGOHOLD_LOG_ACCESS": "true",
                "CLUSTER_DIR": str(self.workdir / "cluster"),
                "CLUSTER_PYTHON": sys.executable,
                "PYTHONPATH": os.pathsep.join(
                    [str(root / "src"), str(root), os.environ.get("PYTHONPATH", "")]
                ),
            }
        )
        done = subprocess.run(
            [str(root / "scripts" / "cluster.sh"), command],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            msg = f"cluster.sh {command} failed:\n{done.stderr}{done.stdout}"
            raise RuntimeError(msg)
        for line in done.stdout.splitlines():
            if line.startswith("URL="):
                self.port = int(line.rsplit(":", 1)[1])


@dataclass
class Containerd:
    """A private containerd: own root, state, socket and config; native snapshotter."""

    workdir: Path
    process: Process | None = None
    # A unix socket path must fit in 108 bytes, so it lives in a short /tmp dir.
    sockdir: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="ctrd-", dir="/tmp"))
    )

    @property
    def address(self) -> str:
        return str(self.sockdir / "containerd.sock")

    def write_config(self) -> Path:
        root = self.workdir / "root"
        state = self.sockdir / "state"
        config = self.workdir / "config.toml"
        # Only the content store, metadata, images, leases and the native snapshotter
        # are needed to pull; everything that expects a real node stays off.
        disabled = [
            "io.containerd.grpc.v1.cri",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.overlayfs",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.internal.v1.tracing",
            "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.monitor.v1.cgroups",
            "io.containerd.runtime.v1.linux",
            "io.containerd.runtime.v2.task",
            "io.containerd.service.v1.tasks-service",
            "io.containerd.grpc.v1.tasks",
            "io.containerd.internal.v1.restart",
        ]
        config.write_text(
            "version = 2\n"
            f'root = "{root}"\n'
            f'state = "{state}"\n'
            f"disabled_plugins = {json.dumps(disabled)}\n"
            "[grpc]\n"
            f'  address = "{self.address}"\n'
            "[ttrpc]\n"
            f'  address = "{self.address}.ttrpc"\n'
            "[debug]\n"
            '  address = ""\n'
            "[metrics]\n"
            '  address = ""\n'
            '[plugins."io.containerd.internal.v1.opt"]\n'
            f'  path = "{self.workdir / "opt"}"\n'
        )
        return config

    def ctr(self, *args: str) -> list[str]:
        return ["ctr", "--address", self.address, "--namespace", "interop", *args]

    def _answers(self) -> bool:
        probe = subprocess.run(
            self.ctr("version"), capture_output=True, timeout=10, check=False
        )
        return probe.returncode == 0

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        self.process = Process(
            ["containerd", "--config", str(config), "--log-level", "info"],
            self.workdir / "containerd.log",
        )
        self.process.start()
        wait_until(self.process, self._answers, "containerd")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        shutil.rmtree(self.sockdir, ignore_errors=True)
