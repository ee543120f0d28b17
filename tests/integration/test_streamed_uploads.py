"""Streamed PATCHes through the real server: ``Transfer-Encoding: chunked`` bodies in
many small pieces, as containers/image (skopeo, podman, buildah) sends layers.

The server batches small body messages into large writes (``storage/filesystem.py``);
these tests check, through granian and the HTTP layer, that the blob that comes out
is the one that went in, and that a stream broken off midway leaves the session as
it was.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import httpx

from tests.integration.helpers import digest_of

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.serverproc import ServerProcess

REPO = "streamed/app"
KIB = 1024
OCTETS = {"Content-Type": "application/octet-stream"}
# containers/image: 32 KiB pieces, some 4 KiB; and a few odd and big ones.
PIECE_SIZES = (32 * KIB, 32 * KIB, 4090, 32 * KIB, 1, 300 * KIB, 7, 4 * KIB)


def _pieces(data: bytes) -> Iterator[bytes]:
    start, index = 0, 0
    while start < len(data):
        size = PIECE_SIZES[index % len(PIECE_SIZES)]
        yield data[start : start + size]
        start += size
        index += 1


def test_a_chunked_patch_of_many_small_pieces_stores_the_right_blob(
    server: ServerProcess,
) -> None:
    data = os.urandom(3 * 1024 * KIB + 777)
    split = 1024 * KIB + 5  # a second streamed PATCH continues the running hash
    server.start()
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        location = client.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
        for part in (data[:split], data[split:]):
            # A generator body: httpx sends it chunked, one chunk per piece.
            patch = client.patch(location, content=_pieces(part), headers=OCTETS)
            assert patch.status_code == 202, patch.text
            location = patch.headers["Location"]
        assert patch.headers["Range"] == f"0-{len(data) - 1}"
        done = client.put(location, params={"digest": digest_of(data)})
        assert done.status_code == 201, done.text
        fetched = client.get(f"/v2/{REPO}/blobs/{digest_of(data)}")
        assert fetched.status_code == 200
        assert fetched.content == data


def test_a_chunked_patch_broken_off_midway_leaves_the_previous_size(
    server: ServerProcess,
) -> None:
    first, lost, rest = os.urandom(5000), os.urandom(1536 * KIB), os.urandom(70 * KIB)
    server.start()
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        location = client.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
        patch = client.patch(location, content=first, headers=OCTETS)
        assert patch.status_code == 202, patch.text
        # More than a write batch of small pieces, then the client goes away without
        # the last (zero-length) chunk.
        head = (
            f"PATCH {location} HTTP/1.1\r\nHost: {server.url[7:]}\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head)
            for piece in _pieces(lost):
                sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["Range"] == f"0-{len(first) - 1}"
        # The session goes on from there; the lost bytes are not part of the blob.
        data = first + rest
        resumed = client.patch(
            location,
            content=_pieces(rest),
            headers=OCTETS | {"Content-Range": f"{len(first)}-{len(data) - 1}"},
        )
        # A chunked body with Content-Range but no Content-Length is accepted as is.
        assert resumed.status_code == 202, resumed.text
        assert resumed.headers["Range"] == f"0-{len(data) - 1}"
        done = client.put(location, params={"digest": digest_of(data)})
        assert done.status_code == 201, done.text
        fetched = client.get(f"/v2/{REPO}/blobs/{digest_of(data)}")
        assert fetched.content == data
