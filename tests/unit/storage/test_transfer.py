"""``StorageTransfer`` and its ``Journal`` over memory stores (one file: the journal).

The integration tier runs the command against real stores; here the edge cases that
need a misbehaving store, which goes in through the constructor.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest

from cargohold.oci.digest import Digest
from cargohold.storage.memory import MemoryBlobStore
from cargohold.storage.transfer import Journal, StorageTransfer, source_digests

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator
    from hashlib import _Hash
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def put(store: MemoryBlobStore, data: bytes) -> Digest:
    digest = Digest.of(data)
    upload_id = uuid.uuid4().hex
    await store.begin_upload(upload_id)

    async def body() -> AsyncIterator[bytes]:
        yield data

    await store.append(upload_id, 0, body(), None)
    await store.commit(upload_id, digest, size=len(data))
    return digest


async def read(store: MemoryBlobStore, digest: Digest) -> bytes:
    return b"".join([chunk async for chunk in store.open(digest)])


async def listed(*digests: Digest) -> AsyncIterator[Digest]:
    for digest in digests:
        yield digest


class ForgetfulStore(MemoryBlobStore):
    """Commits only the first half of every blob (a store that loses writes)."""

    async def commit(self, upload_id: str, digest: Digest, *, size: int) -> None:
        await super().commit(upload_id, digest, size=size // 2)


class CountingStore(MemoryBlobStore):
    """Remembers how many appends were in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = self.most = 0

    async def append(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterable[bytes],
        hasher: _Hash | None,
    ) -> int:
        self.busy += 1
        self.most = max(self.most, self.busy)
        try:
            await asyncio.sleep(0.001)  # let the other workers start theirs
            return await super().append(upload_id, offset, body, hasher)
        finally:
            self.busy -= 1


async def test_every_blob_is_copied_and_journalled(tmp_path: Path) -> None:
    source, destination = MemoryBlobStore(), MemoryBlobStore()
    digests = [await put(source, bytes([n]) * (n + 1) * 1000) for n in range(5)]
    with Journal(tmp_path / "journal", "memory") as journal:
        result = await StorageTransfer(source, destination, journal).run(
            source_digests(source)
        )
    assert (result.copied, result.failed) == (5, [])
    assert (
        result.bytes_copied
        == result.bytes_verified
        == sum((n + 1) * 1000 for n in range(5))
    )
    for digest in digests:
        assert await read(destination, digest) == await read(source, digest)
    sizes = {str(d): len(await read(source, d)) for d in digests}
    with Journal(tmp_path / "journal", "memory") as again:
        assert again.verified == sizes


async def test_a_copy_that_does_not_read_back_fails(tmp_path: Path) -> None:
    source, destination = MemoryBlobStore(), ForgetfulStore()
    digest = await put(source, b"x" * 100)
    with Journal(tmp_path / "journal", "memory") as journal:
        result = await StorageTransfer(source, destination, journal).run(listed(digest))
        assert journal.size_of(digest) is None
    assert result.copied == 0
    assert result.failed == [
        (str(digest), "the destination's copy does not read back as written")
    ]


async def test_a_blob_missing_from_the_source_fails_alone(tmp_path: Path) -> None:
    source, destination = MemoryBlobStore(), MemoryBlobStore()
    present = await put(source, b"here")
    absent = Digest.of(b"named by the metadata, gone from the store")
    with Journal(tmp_path / "journal", "memory") as journal:
        result = await StorageTransfer(source, destination, journal).run(
            listed(absent, present)
        )
    assert result.failed == [(str(absent), "missing from the source")]
    assert result.copied == 1


async def test_a_blob_deleted_from_a_live_source_is_not_a_failure(
    tmp_path: Path,
) -> None:
    source, destination = MemoryBlobStore(), MemoryBlobStore()
    listed_then_deleted = Digest.of(b"collected by gc after the listing")
    with Journal(tmp_path / "journal", "memory") as journal:
        transfer = StorageTransfer(source, destination, journal, missing_ok=True)
        result = await transfer.run(listed(listed_then_deleted))
    assert (result.vanished, result.failed, result.blobs) == (1, [], 1)


async def test_concurrency_is_bounded(tmp_path: Path) -> None:
    source, destination = MemoryBlobStore(), CountingStore()
    for n in range(12):
        await put(source, f"blob {n}".encode())
    with Journal(tmp_path / "journal", "memory") as journal:
        transfer = StorageTransfer(source, destination, journal, concurrency=3)
        result = await transfer.run(source_digests(source))
    assert result.copied == 12
    assert 1 < destination.most <= 3


def test_a_torn_line_is_not_a_record(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    with Journal(path, "store A") as journal:
        journal.add(Digest.of(b"a"), 1)
    with path.open("a") as torn:
        torn.write(f"{Digest.of(b'b')} ")  # killed before the size was written
    with Journal(path, "store A") as again:
        assert again.verified == {str(Digest.of(b"a")): 1}


def test_a_journal_of_another_store_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    with Journal(path, "store A") as journal:
        journal.add(Digest.of(b"a"), 1)
    with Journal(path, "store B") as other:
        assert other.verified == {}
    assert (tmp_path / "journal.old").read_text().startswith("# cargohold")
    assert path.read_text() == "# cargohold migrate-storage journal for store B\n"
