"""A real ``cargohold serve`` in a subprocess, for the integration tier.

Owns: a free loopback port, a private log file, a bounded readiness wait, and every way
of ending the server (graceful ``SIGTERM`` to the main process, ``SIGKILL`` to its whole
process group). The server runs in its own session, so the group holds only the granian
main process and its workers; nothing else is ever signalled.

Also runs the one-shot CLI commands (``fsck``, ``gc``) against a data directory, and
checks a server's log for unhandled errors and 5xx answers (``check_log``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx
import pytest

from tests.watch5xx import ALLOW_MARK, server_log_errors

START_TIMEOUT = 45.0
CLI_TIMEOUT = 120.0
# Plain HTTP without authentication (token auth is the default).
NO_AUTH = {"CARGOHOLD_AUTH_MODE": "none"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environ(**settings: str) -> dict[str, str]:
    """This process's environment without ``CARGOHOLD_*``, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOHOLD_")}
    env.update(settings)
    return env


def run_cli(
    *args: str, data_dir: Path, timeout: float = CLI_TIMEOUT, **settings: str
) -> subprocess.CompletedProcess[str]:
    """``python -m cargohold <args> --data-dir <data_dir>``, run to completion."""
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_environ(**settings),
        cwd=data_dir.parent,
        check=False,
    )


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from ``/proc``; empty where there is no procfs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie no one reaps counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@dataclass
class ServerProcess:
    """``cargohold serve`` on a free loopback port over ``data_dir``.

    ``start()`` may be called again after the server ended (same data dir, same port
    unless ``new_port``), which is how the tests restart it after a crash.
    """

    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    settings: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    pgid: int | None = None
    workers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "cargohold", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data_dir),
        ]  # fmt: skip

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _answers(self) -> bool:
        """The API answers: 200, or 401 with token auth on."""
        try:
            response = httpx.get(f"{self.url}/v2/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code in {200, 401}

    def start(self, *, timeout: float = START_TIMEOUT, new_port: bool = False) -> None:
        if self.running():
            raise RuntimeError("server already running")
        if new_port:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {' '.join(self.argv())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The access log on (unless a test says otherwise): the teardown check
                # (``check_log``) reads it for 5xx answers.
                env=clean_environ(**({"CARGOHOLD_LOG_ACCESS": "true"} | self.settings)),
                # granian resolves the app target against the working directory, and
                # fails when that directory is inside a Python package (tests/...).
                cwd=self.data_dir,
                start_new_session=True,
            )
        self.pgid = self.proc.pid  # a new session: its leader's pid is the group id
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(f"server exited with {code}\n{self.log_tail()}")
            if self._answers():
                self.workers = _children(self.proc.pid)
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout:.0f}s\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _wait_group_gone(self, timeout: float) -> None:
        """Wait until the workers seen at start are gone too (they may be orphans)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(_alive(pid) for pid in self.workers):
                return
            time.sleep(0.02)
        raise RuntimeError(
            f"server workers {self.workers} still alive after {timeout}s"
        )

    def kill(self) -> None:
        """``kill -9`` the whole process group (main process and workers), then reap."""
        if self.proc is None or self.pgid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._wait_group_gone(10)

    def terminate(self, *, timeout: float = 60.0) -> tuple[int, float]:
        """``SIGTERM`` the main process as a service manager would.

        Returns its exit code and the seconds it took to exit. If it is still running
        after ``timeout`` the group is killed and ``RuntimeError`` raised.
        """
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(
                f"server still running {timeout}s after SIGTERM\n{self.log_tail()}"
            ) from None
        elapsed = time.monotonic() - started
        self._wait_group_gone(10)
        return code, elapsed

    def stop(self) -> None:
        """End the server whatever its state: graceful first, then the group kill."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # On RuntimeError terminate() has already killed the group.
            with contextlib.suppress(RuntimeError):
                self.terminate(timeout=15)
        # Workers left behind by a main process that died on its own.
        if self.pgid is not None and any(_alive(pid) for pid in self.workers):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def check_log(process: ServerProcess, request: pytest.FixtureRequest) -> None:
    """Fail unless the server's log is free of unhandled errors and 5xx answers.

    A test that provokes one on purpose is marked ``allow_5xx``.
    """
    if request.node.get_closest_marker(ALLOW_MARK) is not None:
        return
    try:
        text = process.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return
    errors = server_log_errors(text)
    if errors:
        shown = "\n".join(errors[:20])
        pytest.fail(
            f"the server answered 5xx or failed unhandled ({len(errors)} lines; mark "
            f"the test allow_5xx if that is expected):\n{shown}",
            pytrace=False,
        )
