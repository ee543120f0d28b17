"""Bulk transfers: blob downloads, blob uploads (three protocols), and peak RSS
under many concurrent uploads.

Each upload sends a distinct blob: a shared random prefix plus a 16-byte unique
suffix. The prefix's sha256 state is computed once and copied, so the client
hashes only the suffix per upload and never copies the body.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import proctree
from http1 import Connection, Response, location_target, with_query
from seed import REPO, digest_query
from servers import HOST, BenchError

if TYPE_CHECKING:
    from collections.abc import Callable

    from http1 import Buffer
    from servers import RunningServer

    Operation = Callable[[Connection], int]

UPLOAD_MODES = ("monolithic", "single", "chunked", "streamed")
CHUNK_SIZE = 8 << 20
# What containers/image sends: one PATCH, Transfer-Encoding: chunked, 32 KiB pieces
# (the io.Copy buffer; measured at the server: 32 KiB, some 4 KiB).
STREAM_PIECE = 32 << 10
_OCTETS = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True, slots=True)
class TransferSample:
    operations: int
    bytes: int
    seconds: float
    server_cpu_s: float
    client_cpu_s: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0

    @property
    def server_cpu_s_per_gb(self) -> float:
        return self.server_cpu_s / (self.bytes / 1e9) if self.bytes else 0.0

    @property
    def client_cpu_s_per_gb(self) -> float:
        return self.client_cpu_s / (self.bytes / 1e9) if self.bytes else 0.0

    def to_json(self) -> dict[str, float]:
        data: dict[str, float] = asdict(self)
        data |= {
            "mb_per_s": self.mb_per_s,
            "server_cpu_s_per_gb": self.server_cpu_s_per_gb,
            "client_cpu_s_per_gb": self.client_cpu_s_per_gb,
        }
        return data


class UploadBody:
    """Bodies of ``size`` bytes, each one distinct, without per-upload copies."""

    _SUFFIX = 16

    def __init__(self, size: int) -> None:
        self.size = size
        self._prefix = memoryview(os.urandom(size - self._SUFFIX))
        self._prefix_hash = hashlib.sha256(self._prefix)
        self._nonce = os.urandom(8)
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def next(self) -> tuple[list[Buffer], str]:
        """Return (body parts, digest) of a blob not sent before."""
        with self._lock:
            number = next(self._counter)
        suffix = self._nonce + number.to_bytes(8, "big")
        digest = self._prefix_hash.copy()
        digest.update(suffix)
        return [self._prefix, suffix], "sha256:" + digest.hexdigest()


def _check(response: Response, expected: int, what: str) -> None:
    if response.status != expected:
        raise BenchError(
            f"{what}: expected {expected}, got {response.status}: "
            f"{response.body[:300]!r}"
        )


def split_parts(parts: list[Buffer], size: int) -> list[list[Buffer]]:
    """Regroup buffers into chunks of ``size`` bytes (the last may be shorter),
    slicing memoryviews instead of copying."""
    chunks: list[list[Buffer]] = [[]]
    room = size
    for part in parts:
        view = memoryview(part)
        while view:
            if not room:
                chunks.append([])
                room = size
            piece, view = view[:room], view[room:]
            chunks[-1].append(piece)
            room -= len(piece)
    return chunks


def upload_operation(mode: str, body: UploadBody) -> Operation:
    """One upload per call, over the thread's connection; returns bytes sent."""
    uploads = f"/v2/{REPO}/blobs/uploads/"

    def start(conn: Connection) -> str:
        response = conn.request("POST", uploads)
        _check(response, 202, "POST upload")
        return location_target(response.header("location"))

    def monolithic(conn: Connection) -> int:
        parts, digest = body.next()
        target = with_query(start(conn), "digest", digest_query(digest))
        response = conn.request("PUT", target, headers=_OCTETS, body=parts)
        _check(response, 201, "PUT upload")
        return body.size

    def single(conn: Connection) -> int:
        parts, digest = body.next()
        target = with_query(uploads, "digest", digest_query(digest))
        response = conn.request("POST", target, headers=_OCTETS, body=parts)
        _check(response, 201, "POST ?digest= upload")
        return body.size

    def chunked(conn: Connection) -> int:
        parts, digest = body.next()
        target = start(conn)
        offset = 0
        for chunk in split_parts(parts, CHUNK_SIZE):
            end = offset + sum(len(part) for part in chunk) - 1
            headers = _OCTETS | {"Content-Range": f"{offset}-{end}"}
            response = conn.request("PATCH", target, headers=headers, body=chunk)
            _check(response, 202, "PATCH upload")
            target = location_target(response.header("location"))
            offset = end + 1
        final = with_query(target, "digest", digest_query(digest))
        response = conn.request("PUT", final)
        _check(response, 201, "PUT upload (close)")
        return body.size

    def streamed(conn: Connection) -> int:
        parts, digest = body.next()
        target = start(conn)
        response = conn.request(
            "PATCH", target, headers=_OCTETS, body=parts, chunk_size=STREAM_PIECE
        )
        _check(response, 202, "PATCH upload (chunked transfer-encoding)")
        target = location_target(response.header("location"))
        final = with_query(target, "digest", digest_query(digest))
        response = conn.request("PUT", final)
        _check(response, 201, "PUT upload (close)")
        return body.size

    operations: dict[str, Operation] = {
        "monolithic": monolithic,
        "single": single,
        "chunked": chunked,
        "streamed": streamed,
    }
    return operations[mode]


def download_operation(digest: str, size: int) -> Operation:
    target = f"/v2/{REPO}/blobs/{digest}"

    def download(conn: Connection) -> int:
        response = conn.request("GET", target, keep_body=False)
        _check(response, 200, "GET blob")
        if response.body_length != size:
            raise BenchError(f"GET blob: {response.body_length} bytes, not {size}")
        return size

    return download


def run_transfers(
    server: RunningServer,
    operation: Operation,
    *,
    concurrency: int,
    duration: float,
    max_operations: int,
) -> TransferSample:
    """Run ``operation`` on ``concurrency`` connections until ``duration`` has
    passed or ``max_operations`` have started; each finishes what it started."""
    deadline = time.monotonic() + duration
    budget = threading.Semaphore(max_operations)
    totals = [0, 0]  # operations, bytes
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            with Connection(HOST, server.port) as conn:
                while time.monotonic() < deadline and budget.acquire(blocking=False):
                    sent = operation(conn)
                    with lock:
                        totals[0] += 1
                        totals[1] += sent
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            failures.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    client_before = time.process_time()
    server_before = server.cpu_seconds()
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    server_cpu = server.cpu_seconds() - server_before
    client_cpu = time.process_time() - client_before
    if failures:
        raise BenchError(f"{server.label}: transfer failed: {failures[0]!r}")
    return TransferSample(
        operations=totals[0],
        bytes=totals[1],
        seconds=seconds,
        server_cpu_s=server_cpu,
        client_cpu_s=client_cpu,
    )


@dataclass(frozen=True, slots=True)
class RssSample:
    idle_rss_mib: float
    peak_rss_mib: float  # highest sampled sum of VmRSS over the tree
    # Sum of the processes' VmHWM, reset just before the uploads: an upper bound
    # of the tree's peak during them.
    hwm_mib: float
    mb_per_s: float
    processes: int

    def to_json(self) -> dict[str, float]:
        data: dict[str, float] = asdict(self)
        return data


def measure_upload_rss(
    server: RunningServer, body: UploadBody, *, uploads: int
) -> RssSample:
    """Start ``uploads`` monolithic uploads at once on a fresh server."""
    mib = float(1 << 20)
    idle = server.rss_bytes()
    # Start-up peaks (imports, migrations) are not what this test is about.
    if not proctree.reset_hwm(server.pid):
        raise BenchError(f"cannot reset VmHWM of {server.label}'s processes")
    operation = upload_operation("monolithic", body)
    with proctree.RssSampler(server.pid) as sampler:
        sample = run_transfers(
            server,
            operation,
            concurrency=uploads,
            duration=3600,
            max_operations=uploads,
        )
    return RssSample(
        idle_rss_mib=idle / mib,
        peak_rss_mib=max(sampler.peak, server.rss_bytes()) / mib,
        hwm_mib=server.hwm_bytes() / mib,
        mb_per_s=sample.mb_per_s,
        processes=len(proctree.tree_pids(server.pid)),
    )
