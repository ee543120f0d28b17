"""An S3 endpoint for tests: moto in server mode, a real S3 REST server over HTTP.

``MotoServer`` starts ``python -m moto.server -H 127.0.0.1 -p <free port>`` in a
subprocess of its own session, waits (bounded) until it answers, and stops it by its
process id. moto keeps everything in memory and checks no signatures, so any key pair
works; each user makes a bucket of its own (``create_bucket``) and so needs no cleanup.

The ``s3_endpoint`` fixture (``tests/conftest.py``) yields one server's URL per session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Self

import httpx

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# moto accepts any credentials; these make a client's signing code run as for real.
ACCESS_KEY_ID = "cargohold-test"
SECRET_ACCESS_KEY = "cargohold-test-secret"  # noqa: S105 - moto checks no signature
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """One moto S3 server subprocess; use as a context manager."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with self._log.open("wb") as log:
            command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1"]
            self._process = subprocess.Popen(
                [*command, "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto exited at start: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/moto-api/", timeout=2.0).is_success:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"moto did not answer within {START_TIMEOUT} s: {self.log_tail()}"
        )

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("moto is not running")
        return self._process.pid

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        self._log.unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(
                self._log.read_text(errors="replace").splitlines()[-lines:]
            )
        return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_bucket(endpoint: str, name: str | None = None) -> str:
    """Make a bucket on ``endpoint`` (a fresh name unless given); its name."""
    bucket = name or f"cargohold-{uuid.uuid4().hex[:16]}"
    response = httpx.put(f"{endpoint}/{bucket}", timeout=10.0)
    response.raise_for_status()
    return bucket


def storage_settings(endpoint: str, bucket: str, **extra: object) -> dict[str, object]:
    """A TOML-shaped ``[storage]`` table for ``bucket`` on ``endpoint``."""
    return {
        "backend": "s3",
        "bucket": bucket,
        "endpoint_url": endpoint,
        "region": REGION,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        **extra,
    }


def storage_environ(endpoint: str, bucket: str, **extra: str) -> dict[str, str]:
    """The same as ``CARGOHOLD_STORAGE_*`` variables, for a server subprocess."""
    table = storage_settings(endpoint, bucket, **extra)
    return {
        f"CARGOHOLD_STORAGE_{key.upper()}": str(value).lower()
        if isinstance(value, bool)
        else str(value)
        for key, value in table.items()
    }
