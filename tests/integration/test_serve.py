"""``cargohold serve`` as a user runs it: the start-up line, first admin, HTTPS."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.serverproc import clean_environ, free_port
from tests.tls import self_signed


class Serve:
    def __init__(self, tmp_path: Path, *args: str, **settings: str) -> None:
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        argv = [
            sys.executable,
            "-m",
            "cargohold",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(tmp_path / "data"),
            *args,
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_environ(**settings),
                start_new_session=True,
            )

    def wait(self, url: str, **client: object) -> httpx.Response:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                return httpx.get(url, timeout=2, **client)  # type: ignore[arg-type]
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"server did not answer:\n{self.log.read_text()}")

    def stop(self) -> int:
        os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.mark.timeout(120)
def test_https_with_certificate_and_key(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = Serve(
        tmp_path,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        CARGOHOLD_AUTH_MODE="none",
    )
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        response = server.wait(f"https://127.0.0.1:{server.port}/v2/", verify=trust)
        assert response.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/v2/", timeout=2)
    finally:
        code = server.stop()
    assert code == 0  # a clean, graceful exit on SIGTERM
    assert f"url=https://127.0.0.1:{server.port}" in server.log.read_text()


@pytest.mark.timeout(120)
def test_first_start_creates_admin_and_says_where(tmp_path: Path) -> None:
    server = Serve(tmp_path)
    try:
        response = server.wait(f"http://127.0.0.1:{server.port}/v2/")
        assert response.status_code == 401  # token auth is the default
    finally:
        server.stop()
    log = server.log.read_text()
    assert f"data_dir={tmp_path / 'data'}" in log
    assert "Created the first administrator 'admin' with password" in log
    password = log.split("with password '", 1)[1].split("'", 1)[0]
    # The printed password works, and is printed only once.
    again = Serve(tmp_path)
    try:
        url = f"http://127.0.0.1:{again.port}"
        again.wait(f"{url}/v2/")
        assert httpx.get(f"{url}/token", auth=("admin", password)).status_code == 200
        assert httpx.get(f"{url}/token", auth=("admin", "wrong")).status_code == 401
    finally:
        again.stop()
    assert "Created the first administrator" not in again.log.read_text()


@pytest.mark.timeout(120)
def test_auth_off_warns_loudly(tmp_path: Path) -> None:
    server = Serve(tmp_path, CARGOHOLD_AUTH_MODE="none")
    try:
        assert server.wait(f"http://127.0.0.1:{server.port}/v2/").status_code == 200
    finally:
        server.stop()
    assert "AUTHENTICATION IS OFF" in server.log.read_text()


def test_bad_configuration_fails_fast(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 'eighty'\n")
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        env=clean_environ(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "server.port" in result.stderr


def test_a_busy_port_is_refused(tmp_path: Path) -> None:
    """Not shared silently: the workers bind with SO_REUSEPORT, so without a check a
    second server on a port would take half of the first one's requests."""
    port = free_port()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "cargohold", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data")],
            capture_output=True,
            text=True,
            env=clean_environ(),
            timeout=60,
            check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before touching anything
