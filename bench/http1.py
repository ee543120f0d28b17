"""A minimal blocking HTTP/1.1 client on a raw socket, for bulk transfers.

Bodies go out with one ``sendall`` per buffer and come in through ``recv_into`` a
reused 1 MiB buffer, so the client spends little CPU per byte and releases the GIL
while the kernel copies. Only what the benchmark needs: keep-alive, Content-Length
bodies out, Content-Length or chunked bodies in.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self, TypeAlias
from urllib.parse import urlsplit

from servers import BenchError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

Buffer: TypeAlias = bytes | bytearray | memoryview

_RECV_SIZE = 1 << 20
_MAX_KEPT_BODY = 16 << 20


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes  # empty when the body was discarded
    body_length: int

    def header(self, name: str) -> str:
        try:
            return self.headers[name]
        except KeyError:
            raise BenchError(f"response {self.status} has no {name} header") from None


class Connection:
    """One keep-alive connection. Not thread-safe: one per thread."""

    def __init__(self, host: str, port: int, *, timeout: float = 120.0) -> None:
        self._host = f"{host}:{port}"
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pending = bytearray()
        self._scratch = memoryview(bytearray(_RECV_SIZE))

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Sequence[Buffer] = (),
        keep_body: bool = True,
        chunk_size: int | None = None,
    ) -> Response:
        """Send a request; with ``chunk_size``, the body goes out with
        ``Transfer-Encoding: chunked`` in pieces of that size (as Go's HTTP client
        sends a body of unknown length: one chunk per ``Write``)."""
        length = sum(len(part) for part in body)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if chunk_size is not None:
            lines.append("Transfer-Encoding: chunked")
        elif length or method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if chunk_size is not None:
            self._sock.sendall(head)
            self._send_chunked(body, chunk_size)
        elif length and length <= 64 << 10:
            self._sock.sendall(head + b"".join(body))
        else:
            self._sock.sendall(head)
            for part in body:
                self._sock.sendall(part)
        return self._read_response(head_only=method == "HEAD", keep_body=keep_body)

    def _send_chunked(self, body: Sequence[Buffer], chunk_size: int) -> None:
        for part in body:
            view = memoryview(part)
            for start in range(0, len(view), chunk_size):
                piece = view[start : start + chunk_size]
                # One syscall per chunk, and no copy of the piece.
                self._send_all([b"%x\r\n" % len(piece), piece, b"\r\n"])
        self._sock.sendall(b"0\r\n\r\n")

    def _send_all(self, buffers: list[Buffer]) -> None:
        views = [memoryview(b) for b in buffers]
        while views:
            sent = self._sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            if views and sent:
                views[0] = views[0][sent:]

    def _read_response(self, *, head_only: bool, keep_body: bool) -> Response:
        status, headers = self._read_head()
        if head_only or status in {204, 304} or 100 <= status < 200:
            return Response(status, headers, b"", 0)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
            return Response(status, headers, body, len(body))
        length = int(headers.get("content-length", "0"))
        if keep_body and length > _MAX_KEPT_BODY:
            raise BenchError(f"refusing to buffer a {length}-byte body")
        body = self._read_exact(length, keep=keep_body)
        return Response(status, headers, body, length)

    def _fill(self) -> None:
        chunk = self._sock.recv(_RECV_SIZE)
        if not chunk:
            raise BenchError("server closed the connection mid-response")
        self._pending += chunk

    def _read_line(self) -> bytes:
        while (end := self._pending.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self._pending[:end])
        del self._pending[: end + 2]
        return line

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while (end := self._pending.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = self._pending[:end].decode("latin-1").split("\r\n")
        del self._pending[: end + 4]
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def _read_exact(self, length: int, *, keep: bool) -> bytes:
        kept = bytearray()
        taken = min(length, len(self._pending))
        if keep:
            kept += self._pending[:taken]
        del self._pending[:taken]
        remaining = length - taken
        while remaining:
            view = self._scratch[: min(remaining, _RECV_SIZE)]
            received = self._sock.recv_into(view)
            if not received:
                raise BenchError("server closed the connection mid-body")
            if keep:
                kept += view[:received]
            remaining -= received
        return bytes(kept)

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while size := int(self._read_line().split(b";")[0], 16):
            body += self._read_exact(size, keep=True)
            self._read_line()
            if len(body) > _MAX_KEPT_BODY:
                raise BenchError("chunked body too large to keep")
        while self._read_line():  # trailers, then the empty line
            pass
        return bytes(body)


def location_target(location: str) -> str:
    """The request target (path and query) of a Location header value."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def with_query(target: str, name: str, value: str) -> str:
    return f"{target}{'&' if '?' in target else '?'}{name}={value}"
