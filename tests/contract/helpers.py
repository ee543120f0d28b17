"""Small async helpers shared by the contract suites."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from cargohold.oci.digest import Digest

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator
    from pathlib import Path

    from cargohold.storage.base import BlobStore

# Upload ids a client could send that look like paths (the API passes ids through).
TRAVERSAL = [
    "../x",
    "../../victim",
    "../uploads/../../victim",
    "..",
    ".",
    "",
    "/",
    "a/../../victim",
    "0" * 32 + "/../../victim",
    "..\\..\\victim",
    "%2e%2e%2fvictim",
]


def new_upload_id() -> str:
    """An upload id of the shape the upload service hands out (``uuid4().hex``)."""
    return uuid.uuid4().hex


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def failing(*parts: bytes, error: BaseException) -> AsyncIterator[bytes]:
    """A request body that delivers ``parts`` and then breaks off with ``error``."""
    for part in parts:
        yield part
    raise error


async def collect(stream: AsyncIterable[bytes]) -> bytes:
    return b"".join([part async for part in stream])


async def put_blob(store: BlobStore, data: bytes, algorithm: str = "sha256") -> Digest:
    """Upload and commit ``data`` in one go; its digest."""
    upload_id = new_upload_id()
    await store.begin_upload(upload_id)
    await store.append(upload_id, 0, chunks(data), None)
    digest = Digest.of(data, algorithm)
    await store.commit(upload_id, digest, size=len(data))
    return digest


def snapshot(root: Path) -> dict[Path, tuple[bytes | None, int]]:
    """Every path under ``root`` with its content and mtime, to prove nothing moved."""
    return {
        path: (None if path.is_dir() else path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }
