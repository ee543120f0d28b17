"""Closed-loop HTTP/1.1 load generator on uvloop, used for HEAD requests.

Debian's wrk 4.1.0 (and h2load's HTTP/1 mode) wait for a body after a HEAD
response that carries Content-Length, so they stall at zero requests. This tool
keeps ``--connections`` keep-alive connections, each with one request in flight,
cycles through the paths in ``--paths-file``, and prints one JSON object with the
same fields run.py reads from wrk. It handles bodies with Content-Length too
(not chunked), so it can be checked against wrk on GET.

Run as a subprocess (its CPU is then the client's, apart from the server's):
    python hload.py --port 5000 --method HEAD --paths-file p.txt -c 16 -d 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import uvloop

if TYPE_CHECKING:
    from collections.abc import Callable

_GRACE = 5.0  # seconds to let in-flight requests finish after the deadline


@dataclass(slots=True)
class _Shared:
    requests: list[bytes]
    head: bool
    deadline_ns: int
    stopping: bool = False
    latencies_ns: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0


class _Client(asyncio.Protocol):
    def __init__(self, shared: _Shared, offset: int, closed: asyncio.Future[None]):
        self._shared = shared
        self._index = offset % len(shared.requests)
        self._closed = closed
        self._transport: asyncio.Transport | None = None
        self._buf = b""
        self._started_ns = 0
        self._in_flight = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast("asyncio.Transport", transport)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None  # noqa: S101
        shared = self._shared
        if shared.stopping:
            self._transport.close()
            return
        request = shared.requests[self._index]
        self._index = (self._index + 1) % len(shared.requests)
        self._in_flight = True
        self._started_ns = time.perf_counter_ns()
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self._buf = buf
            return
        if not self._shared.head:
            length = _content_length(buf[:end])
            if len(buf) < end + 4 + length:
                self._buf = buf
                return
        self._buf = b""
        self._in_flight = False
        now = time.perf_counter_ns()
        shared = self._shared
        if now <= shared.deadline_ns:
            status = int(buf[9:12])
            shared.statuses[status] = shared.statuses.get(status, 0) + 1
            shared.latencies_ns.append(now - self._started_ns)
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        if self._in_flight or not self._shared.stopping:
            self._shared.errors += 1
        if not self._closed.done():
            self._closed.set_result(None)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _returning(client: _Client) -> Callable[[], _Client]:
    return lambda: client


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _percentile(sorted_values: list[int], fraction: float) -> int:
    if not sorted_values:
        return 0
    return sorted_values[
        min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    ]


async def _run(args: argparse.Namespace, paths: list[str]) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    extra = "".join(f"{header}\r\n" for header in args.header)
    requests = [
        f"{args.method} {path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"{extra}\r\n".encode("latin-1")
        for path in paths
    ]
    cpu_before = time.process_time()
    start_ns = time.perf_counter_ns()
    shared = _Shared(
        requests=requests,
        head=args.method == "HEAD",
        deadline_ns=start_ns + int(args.duration * 1e9),
    )
    clients: list[_Client] = []
    closed: list[asyncio.Future[None]] = []
    for number in range(args.connections):
        future: asyncio.Future[None] = loop.create_future()
        stride = len(requests) // args.connections or 1
        client = _Client(shared, number * stride, future)
        await loop.create_connection(_returning(client), args.host, args.port)
        clients.append(client)
        closed.append(future)

    def stop() -> None:
        shared.stopping = True

    loop.call_at(loop.time() + args.duration, stop)
    _done, pending = await asyncio.wait(closed, timeout=args.duration + _GRACE)
    for client in clients:
        client.abort()
    cpu_us = int((time.process_time() - cpu_before) * 1e6)
    latencies = sorted(shared.latencies_ns)
    return {
        "requests": len(latencies),
        "duration_us": (shared.deadline_ns - start_ns) // 1000,
        "p50_us": _percentile(latencies, 0.50) // 1000,
        "p99_us": _percentile(latencies, 0.99) // 1000,
        "status": sum(n for code, n in shared.statuses.items() if code >= 400),
        "errors": shared.errors,
        "timeout": len(pending),
        "cpu_us": cpu_us,  # this process during the load, without start-up
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="HEAD")
    parser.add_argument("--paths-file", required=True)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("-d", "--duration", type=float, default=4.0)
    args = parser.parse_args(argv)
    text = Path(args.paths_file).read_text(encoding="utf-8")
    paths = [line.strip() for line in text.splitlines() if line.strip()]
    result = uvloop.run(_run(args, paths))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
