"""Graceful shutdown: ``SIGTERM`` to the server while uploads are in progress.

The server must exit with code 0 within its shutdown timeout
(``server.shutdown_timeout``) and leave every upload either resumable (status 204 with
the ``Range`` of the chunks it acknowledged) or unknown (``BLOB_UPLOAD_UNKNOWN``), never
corrupt.
"""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.integration.helpers import digest_of
from tests.integration.serverproc import NO_AUTH, ServerProcess, check_log, run_cli

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
SHUTDOWN_TIMEOUT = 4.0
# What exiting "within the timeout" may add: stopping the worker, closing the database.
EXIT_MARGIN = 4.0
REPO = "shutdown/app"
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def server(workdir: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    process = ServerProcess(
        workdir / "data",
        workdir / "server.log",
        settings=NO_AUTH | {"CARGOHOLD_SERVER_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)},
    )
    try:
        yield process
    finally:
        process.stop()
    check_log(process, request)


def sigterm(server: ServerProcess) -> float:
    code, elapsed = server.terminate(timeout=SHUTDOWN_TIMEOUT + 30)
    assert code == 0, f"exit code {code}\n{server.log_tail()}"
    assert elapsed < SHUTDOWN_TIMEOUT + EXIT_MARGIN, f"took {elapsed:.1f}s to exit"
    return elapsed


def resume_or_unknown(
    server: ServerProcess, location: str, data: bytes, sent: set[int]
) -> str:
    """After a restart: the upload resumes from an acknowledged boundary, or is unknown.

    ``sent`` holds the sizes the upload may have when the server stopped. Completes a
    resumable upload and checks the blob. Returns ``"resumed"`` or ``"unknown"``.
    """
    upload_id = location.rsplit("/", 1)[-1]
    stored = server.data_dir / "storage" / "uploads" / upload_id
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        assert client.head(f"/v2/{REPO}/blobs/{digest_of(data)}").status_code == 404
        status = client.get(location)
        if status.status_code == 404:
            assert status.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
            return "unknown"
        assert status.status_code == 204, status.text
        last = int(status.headers["Range"].split("-")[1])
        size = 0 if last == 0 else last + 1
        assert size in sent, f"Range says {size} bytes; the client sent {sorted(sent)}"
        with stored.open("rb") as handle:
            assert handle.read(size) == data[:size], (
                "stored bytes differ from those sent"
            )
        if size < len(data):
            patch = client.patch(
                location, content=data[size:],
                headers=OCTETS | {"Content-Range": f"{size}-{len(data) - 1}"},
            )  # fmt: skip
            assert patch.status_code == 202, patch.text
            assert patch.headers["Range"] == f"0-{len(data) - 1}"
        put = client.put(location, params={"digest": digest_of(data)})
        assert put.status_code == 201, put.text
        assert put.headers["Docker-Content-Digest"] == digest_of(data)
        fetched = client.get(f"/v2/{REPO}/blobs/{digest_of(data)}")
        assert fetched.status_code == 200
        assert fetched.content == data
    return "resumed"


def fsck_clean(server: ServerProcess) -> None:
    result = run_cli("fsck", data_dir=server.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["0 problem(s) found, 0 repaired"]


def open_upload(client: httpx.Client, first: bytes) -> str:
    started = client.post(f"/v2/{REPO}/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["Location"]
    patch = client.patch(
        location,
        content=first,
        headers=OCTETS | {"Content-Range": f"0-{len(first) - 1}"},
    )
    assert patch.status_code == 202, patch.text
    return location


def test_sigterm_between_patches(server: ServerProcess, rng: random.Random) -> None:
    data = rng.randbytes(3 * MIB + 12345)
    first = MIB
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        location = open_upload(client, data[:first])
    elapsed = sigterm(server)
    # Nothing was in flight: the server has no reason to wait for its timeout.
    assert elapsed < SHUTDOWN_TIMEOUT, f"idle server took {elapsed:.1f}s to stop"

    server.start()
    assert resume_or_unknown(server, location, data, {first}) == "resumed"
    sigterm(server)
    fsck_clean(server)


class SlowPatch(threading.Thread):
    """A background PATCH streaming ``body`` in pieces ``pause`` seconds apart."""

    def __init__(self, url: str, location: str, body: bytes, pause: float) -> None:
        super().__init__(name="slow-patch", daemon=True)
        self.url = url
        self.location = location
        self.body = body
        self.pause = pause
        self.sent = 0
        self.started_streaming = threading.Event()
        self.stop = threading.Event()
        self.response: httpx.Response | None = None
        self.error: Exception | None = None

    def pieces(self) -> Iterator[bytes]:
        step = 256 * KIB
        for start in range(0, len(self.body), step):
            if self.stop.is_set():
                return
            piece = self.body[start : start + step]
            self.sent += len(piece)
            yield piece
            self.started_streaming.set()
            time.sleep(self.pause)

    def run(self) -> None:
        # A chunked-encoding body: no Content-Length, the size is known at the end.
        try:
            with httpx.Client(base_url=self.url, timeout=60.0) as client:
                self.response = client.patch(
                    self.location, content=self.pieces(), headers=OCTETS
                )
        except httpx.TransportError as exc:
            self.error = exc


def test_sigterm_during_a_streaming_patch_that_finishes_in_time(
    server: ServerProcess, rng: random.Random
) -> None:
    """The in-flight chunk is drained and acknowledged; the restart sees all of it."""
    first = 512 * KIB
    data = rng.randbytes(first + 6 * MIB)
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        location = open_upload(client, data[:first])
    # 24 pieces 0.05 s apart: about 1.2 s, well inside the shutdown timeout.
    patch = SlowPatch(server.url, location, data[first:], pause=0.05)
    patch.start()
    try:
        assert patch.started_streaming.wait(10)
        time.sleep(0.2)
        sigterm(server)
        patch.join(30)
    finally:
        patch.stop.set()
        patch.join(30)
    assert not patch.is_alive()
    assert patch.error is None, f"in-flight PATCH cut off: {patch.error!r}"
    assert patch.response is not None
    assert patch.response.status_code == 202, patch.response.text
    assert patch.response.headers["Range"] == f"0-{len(data) - 1}"

    server.start()
    assert resume_or_unknown(server, location, data, {len(data)}) == "resumed"
    sigterm(server)
    fsck_clean(server)


@pytest.mark.slow
def test_sigterm_during_a_streaming_patch_that_outlasts_the_timeout(
    server: ServerProcess, rng: random.Random
) -> None:
    """The server stops at its timeout anyway; the cut chunk is not half-applied."""
    first = 512 * KIB
    data = rng.randbytes(first + 16 * MIB)
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        location = open_upload(client, data[:first])
    # 64 pieces 0.25 s apart: 16 s, far beyond the shutdown timeout.
    patch = SlowPatch(server.url, location, data[first:], pause=0.25)
    patch.start()
    try:
        assert patch.started_streaming.wait(10)
        time.sleep(0.5)
        sigterm(server)
        patch.join(10)
    finally:
        patch.stop.set()
        patch.join(30)
    assert not patch.is_alive()
    assert patch.sent < len(data) - first, "the PATCH finished before the shutdown"
    # The server cut the request: no acknowledgement, or at worst an error answer.
    assert patch.error is not None or (
        patch.response is not None and patch.response.status_code != 202
    )

    server.start()
    outcome = resume_or_unknown(server, location, data, {first})
    print(f"after a SIGTERM mid-PATCH the upload was {outcome}")
    sigterm(server)
    fsck_clean(server)


def test_sigterm_on_an_idle_server_exits_promptly(server: ServerProcess) -> None:
    server.start()
    elapsed = sigterm(server)
    assert elapsed < SHUTDOWN_TIMEOUT
    server.start()
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        assert client.get("/v2/").status_code == 200
    sigterm(server)
