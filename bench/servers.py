"""Start and stop the registries under test, each in its own temp dir and port.

Every server runs in a new session (process group), so ``stop()`` can end the whole
tree it started, and only that tree. Output goes to a log file in the server's
work dir; the last lines are shown if it fails to start.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self

import proctree

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION_BINARY = "/usr/bin/docker-registry"

# Distribution's own defaults, minus the access log and with errors only, so that
# logging costs neither server much. Same shape as Debian's /etc/docker/registry.
_DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data_dir}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {host}:{port}
"""


class BenchError(Exception):
    """The benchmark cannot go on (a server failed, a check did not hold)."""


class ServerGoneError(BenchError):
    """The server process exited during the run."""


class CommandBuilder(Protocol):
    def __call__(self, *, work_dir: Path, data_dir: Path, port: int) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Contender:
    """One registry implementation: how to start it and what to call it."""

    label: str
    build_command: CommandBuilder
    version: str
    # Environment for the server: the bench's own, minus these prefixes, plus env.
    env: Mapping[str, str] = field(default_factory=dict)
    scrub_env_prefix: str | None = None

    def environment(self) -> dict[str, str]:
        prefix = self.scrub_env_prefix
        base = {
            name: value
            for name, value in os.environ.items()
            if prefix is None or not name.startswith(prefix)
        }
        return base | dict(self.env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, what: str, *, timeout: float = 20.0) -> None:
    """Until something accepts connections on ``port``; exits the bench if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise SystemExit(f"{what} did not start")


def distribution_contender(label: str = "Distribution") -> Contender:
    def build(*, work_dir: Path, data_dir: Path, port: int) -> list[str]:
        config = work_dir / "config.yml"
        config.write_text(
            _DISTRIBUTION_CONFIG.format(data_dir=data_dir, host=HOST, port=port)
        )
        return [DISTRIBUTION_BINARY, "serve", str(config)]

    if not Path(DISTRIBUTION_BINARY).exists():
        raise BenchError(
            f"{DISTRIBUTION_BINARY} missing: apt-get install docker-registry"
        )
    out = subprocess.run(
        [DISTRIBUTION_BINARY, "--version"], capture_output=True, text=True, check=False
    )
    version = out.stdout.split()[-1] if out.stdout.split() else "unknown"
    return Contender(label=label, build_command=build, version=version)


def default_cargohold_python() -> str:
    venv_python = REPO_ROOT / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


# The server contract of this benchmark: plain HTTP, no auth, quiet logs (as for
# Distribution above).
CARGOHOLD_ENV = {"CARGOHOLD_AUTH_MODE": "none", "CARGOHOLD_LOG_LEVEL": "error"}


def cargohold_contender(
    python: str,
    extra_args: Sequence[str],
    env: Mapping[str, str],
    *,
    label: str = "cargohold",
) -> Contender:
    def build(*, work_dir: Path, data_dir: Path, port: int) -> list[str]:
        del work_dir
        return [
            python,
            "-m",
            "cargohold",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *extra_args,
        ]

    return Contender(
        label=label,
        build_command=build,
        version=_git_version(),
        env=CARGOHOLD_ENV | dict(env),
        scrub_env_prefix="CARGOHOLD_",
    )


def _git_version() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


@dataclass(slots=True)
class RunningServer:
    """A started registry. Use as a context manager: it stops and cleans up."""

    contender: Contender
    work_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def label(self) -> str:
        return self.contender.label

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError(f"{self.label} is not running")
        return self.process.pid

    def ensure_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise ServerGoneError(f"{self.label} has exited:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        return proctree.cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return proctree.rss_bytes(self.pid)

    def hwm_bytes(self) -> int:
        return proctree.hwm_bytes(self.pid)

    def start(self, timeout: float = 90.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = self.contender.build_command(
            work_dir=self.work_dir, data_dir=self.data_dir, port=self.port
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                env=self.contender.environment(),
                start_new_session=True,
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BenchError(
                    f"{self.label} exited with {self.process.returncode}:\n"
                    + self.log_tail()
                )
            # 401: token auth is on, and the registry is answering.
            if _v2_status(self.port) in {http.client.OK, http.client.UNAUTHORIZED}:
                return
            time.sleep(0.05)
        raise BenchError(
            f"{self.label}: GET /v2/ not 200 within {timeout}s\n" + self.log_tail()
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # The server leads its own process group: end exactly that group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # granian's worker may outlive the main process for a moment.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def __enter__(self) -> Self:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def _v2_status(port: int) -> int | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/v2/")
        response = conn.getresponse()
        response.read()
    except OSError:
        return None
    else:
        return response.status
    finally:
        conn.close()
