"""The ``BlobStore.append`` contract for bodies in many pieces, over every store.

Real clients send a body in whatever pieces their HTTP stack produces: containers/image
(skopeo, podman, buildah) streams layers in 32 KiB and 4 KiB pieces, other clients in
hundreds of KiB. A store may write them in batches of any size; these tests state what
must hold whatever the batching: the bytes land in order, the hasher sees exactly the
bytes that landed, and a body that breaks off leaves the upload at the offset.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import pytest

from .helpers import chunks, collect, failing, new_upload_id

if TYPE_CHECKING:
    from cargohold.storage.base import BlobStore

KIB = 1024
MIB = 1024 * KIB


def _pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into pieces of ``sizes`` (cycled), the last one shorter."""
    out, start, index = [], 0, 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        out.append(data[start : start + size])
        start += size
        index += 1
    return out


# Piece sizes around the boundaries a batching store may use (a few KiB, 32 KiB, a
# quarter MiB, 1 MiB), with empty pieces mixed in.
MIXES = {
    "tiny": [1, 7, 100, 0, 4 * KIB - 1],
    "containers-image": [32 * KIB, 32 * KIB, 4 * KIB, 32 * KIB, 4090],
    "tiny-and-big": [5, 300 * KIB, 3, 4 * KIB, MIB + 3, 1, 256 * KIB, 256 * KIB - 1],
    "big": [408 * KIB, MIB, 2 * MIB + 1],
}


@pytest.mark.parametrize("mix", MIXES)
async def test_pieces_land_in_order_and_the_hasher_sees_them(
    blob_store: BlobStore, mix: str
) -> None:
    data = os.urandom(3 * MIB + 12345)
    pieces = _pieces(data, MIXES[mix])
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    hasher = hashlib.sha256()
    size = await blob_store.append(upload_id, 0, chunks(*pieces), hasher)
    assert size == len(data)
    assert await blob_store.upload_size(upload_id) == len(data)
    assert await collect(blob_store.read_upload(upload_id, end=size)) == data
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_thousands_of_tiny_pieces_across_several_appends(
    blob_store: BlobStore,
) -> None:
    data = os.urandom(200 * KIB)
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    hasher = hashlib.sha256()
    offset = 0
    for part in (data[:1], data[1 : 150 * KIB], data[150 * KIB :]):
        pieces = [part[i : i + 13] for i in range(0, len(part), 13)]
        offset = await blob_store.append(upload_id, offset, chunks(*pieces), hasher)
    assert offset == len(data)
    assert await collect(blob_store.read_upload(upload_id, end=offset)) == data
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param([b"x"] * 100, id="tiny-pieces-only"),
        pytest.param([b"y" * (4 * KIB)] * 600, id="more-than-a-batch-of-tiny"),
        pytest.param([b"z" * 3, b"w" * (600 * KIB), b"v" * 9], id="tiny-big-tiny"),
    ],
)
async def test_a_body_ending_early_cuts_back_to_the_previous_size(
    blob_store: BlobStore, sent: list[bytes]
) -> None:
    before = os.urandom(5000)
    upload_id = new_upload_id()
    await blob_store.begin_upload(upload_id)
    await blob_store.append(upload_id, 0, chunks(before), None)
    error = ConnectionResetError("client went away")
    with pytest.raises(ConnectionResetError):
        await blob_store.append(
            upload_id, len(before), failing(*sent, error=error), hashlib.sha256()
        )
    assert await collect(blob_store.read_upload(upload_id, end=10 * MIB)) == before
    # The session goes on from where it was, with none of the lost bytes in between.
    after = b"after" * 1000
    hasher = hashlib.sha256(before)
    size = await blob_store.append(upload_id, len(before), chunks(after), hasher)
    assert size == len(before) + len(after)
    assert await collect(blob_store.read_upload(upload_id, end=size)) == before + after
    assert hasher.hexdigest() == hashlib.sha256(before + after).hexdigest()
