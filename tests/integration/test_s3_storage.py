"""``cargohold serve`` on S3 (moto's server): two processes, one bucket, one database.

Server ``streamed`` sends blob bytes through itself; server ``redirect`` answers blob
GETs with 307 to a presigned URL. Both share the data directory (SQLite) and the
bucket, so they stand for two replicas: a chunked upload alternates between them.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from typing import TYPE_CHECKING

import httpx
import pytest

from cargohold.storage.s3 import S3BlobStore
from tests.integration.helpers import digest_of, image_manifest
from tests.integration.serverproc import (
    CLI_TIMEOUT,
    NO_AUTH,
    ServerProcess,
    check_log,
    run_cli,
)
from tests.s3server import create_bucket, storage_environ, storage_settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MIB = 1024 * 1024
REPO = "s3/app"


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    return create_bucket(s3_endpoint)


@pytest.fixture
def s3_environ(s3_endpoint: str, bucket: str) -> dict[str, str]:
    # 5 MiB parts (S3's minimum) so that a few MiB cross part boundaries.
    return storage_environ(s3_endpoint, bucket, part_size=str(5 * MIB))


@pytest.fixture
def servers(
    workdir: Path, s3_environ: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    data_dir = workdir / "data"
    streamed = ServerProcess(
        data_dir, workdir / "streamed.log", settings=NO_AUTH | s3_environ
    )
    redirect = ServerProcess(
        data_dir,
        workdir / "redirect.log",
        settings=NO_AUTH | s3_environ | {"CARGOHOLD_STORAGE_REDIRECT": "true"},
    )
    try:
        streamed.start()
        redirect.start()
        yield streamed, redirect
    finally:
        streamed.stop()
        redirect.stop()
    check_log(streamed, request)
    check_log(redirect, request)


def _keys(endpoint: str, bucket: str, prefix: str) -> set[str]:
    table = storage_settings(endpoint, bucket)
    table.pop("backend")

    async def listed() -> set[str]:
        store = S3BlobStore(**table)  # type: ignore[arg-type]
        try:
            return {item["Key"] async for item in store._list(prefix)}
        finally:
            await store.close()

    return asyncio.run(listed())


def test_chunked_upload_across_replicas_then_range_gets_both_ways(
    servers: tuple[ServerProcess, ServerProcess], s3_endpoint: str, bucket: str
) -> None:
    streamed, redirect = servers
    data = os.urandom(11 * MIB + 5)
    digest = digest_of(data)
    cuts = [0, 3 * MIB, 7 * MIB, len(data)]
    with (
        httpx.Client(base_url=streamed.url, timeout=60.0) as one,
        httpx.Client(base_url=redirect.url, timeout=60.0) as two,
    ):
        started = one.post(f"/v2/{REPO}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        for index, (start, end) in enumerate(itertools.pairwise(cuts)):
            client = (one, two)[index % 2]  # each PATCH on the other replica
            patched = client.patch(
                location,
                content=data[start:end],
                headers={
                    "Content-Range": f"{start}-{end - 1}",
                    "Content-Type": "application/octet-stream",
                },
            )
            assert patched.status_code == 202, patched.text
            assert patched.headers["Range"] == f"0-{end - 1}"
            location = patched.headers["Location"]
        # The running hash is in the other process: the commit re-reads from S3.
        done = two.put(location, params={"digest": digest})
        assert done.status_code == 201, done.text
        assert not _keys(s3_endpoint, bucket, "uploads/")  # the upload's objects went

        # Streamed: whole, one range (206), an unsatisfiable one (416).
        whole = one.get(f"/v2/{REPO}/blobs/{digest}")
        assert whole.status_code == 200
        assert hashlib.sha256(whole.content).hexdigest() == digest[7:]
        part = one.get(f"/v2/{REPO}/blobs/{digest}", headers={"Range": "bytes=5-104"})
        assert (part.status_code, part.content) == (206, data[5:105])
        assert part.headers["Content-Range"] == f"bytes 5-104/{len(data)}"
        tail = one.get(f"/v2/{REPO}/blobs/{digest}", headers={"Range": "bytes=-7"})
        assert (tail.status_code, tail.content) == (206, data[-7:])
        several = one.get(
            f"/v2/{REPO}/blobs/{digest}", headers={"Range": "bytes=100-109,0-9"}
        )
        assert several.status_code == 206
        assert several.headers["Content-Type"].startswith("multipart/byteranges;")
        assert int(several.headers["Content-Length"]) == len(several.content)
        first = several.content.index(data[0:10])
        assert first < several.content.index(data[100:110])
        assert f"Content-Range: bytes 100-109/{len(data)}".encode() in several.content
        beyond = one.get(
            f"/v2/{REPO}/blobs/{digest}", headers={"Range": f"bytes={len(data)}-"}
        )
        assert beyond.status_code == 416
        assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"

        # Redirected: 307 to the store, which the client follows, Range included.
        moved = two.get(f"/v2/{REPO}/blobs/{digest}")
        assert moved.status_code == 307
        assert moved.headers["Location"].startswith(s3_endpoint)
        assert moved.headers["Docker-Content-Digest"] == digest
        followed = two.get(f"/v2/{REPO}/blobs/{digest}", follow_redirects=True)
        assert followed.status_code == 200
        assert followed.content == data
        ranged = two.get(
            f"/v2/{REPO}/blobs/{digest}",
            headers={"Range": "bytes=6291456-6291465"},
            follow_redirects=True,
        )
        assert (ranged.status_code, ranged.content) == (
            206,
            data[6 * MIB : 6 * MIB + 10],
        )
        head = two.head(f"/v2/{REPO}/blobs/{digest}")
        assert head.headers["Content-Length"] == str(len(data))


def test_a_wrong_digest_across_replicas_is_refused_and_leaves_nothing(
    servers: tuple[ServerProcess, ServerProcess], s3_endpoint: str, bucket: str
) -> None:
    streamed, redirect = servers
    data = os.urandom(MIB)
    with (
        httpx.Client(base_url=streamed.url, timeout=60.0) as one,
        httpx.Client(base_url=redirect.url, timeout=60.0) as two,
    ):
        location = one.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
        patched = one.patch(location, content=data)
        assert patched.status_code == 202, patched.text
        wrong = digest_of(data + b"x")
        refused = two.put(patched.headers["Location"], params={"digest": wrong})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert not _keys(s3_endpoint, bucket, "")  # neither blob nor upload objects


def test_gc_deletes_unreferenced_blobs_from_the_bucket(
    servers: tuple[ServerProcess, ServerProcess],
    s3_endpoint: str,
    bucket: str,
    s3_environ: dict[str, str],
) -> None:
    streamed, _ = servers
    config, layer = b'{"kept": 1}', os.urandom(3000)
    old_config, old_layer = b'{"old": 1}', os.urandom(2000)
    loose = os.urandom(1000)
    with httpx.Client(base_url=streamed.url, timeout=60.0) as client:
        for blob in (config, layer, old_config, old_layer, loose):
            pushed = client.post(
                f"/v2/{REPO}/blobs/uploads/",
                params={"digest": digest_of(blob)},
                content=blob,
            )
            assert pushed.status_code == 201, pushed.text
        for tag, blobs in (("kept", (config, layer)), ("old", (old_config, old_layer))):
            put = client.put(
                f"/v2/{REPO}/manifests/{tag}",
                content=image_manifest(blobs[0], [blobs[1]]),
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert put.status_code == 201, put.text
        assert client.delete(f"/v2/{REPO}/manifests/old").status_code == 202

        result = run_cli(
            "gc",
            "--delete-untagged",
            data_dir=streamed.data_dir,
            timeout=CLI_TIMEOUT,
            CARGOHOLD_REGISTRY_GC_GRACE_HOURS="0",
            **s3_environ,
        )
        assert result.returncode == 0, result.stderr
        doomed = (old_config, old_layer, loose)
        size = sum(map(len, doomed))
        assert result.stdout.splitlines()[-1].startswith(
            f"deleted 3 blob(s), {size} bytes;"
        )
        left = {key.rpartition("/")[2] for key in _keys(s3_endpoint, bucket, "blobs/")}
        assert {digest_of(b)[7:] for b in doomed}.isdisjoint(left)
        assert {digest_of(b)[7:] for b in (config, layer)} <= left
        pulled = client.get(f"/v2/{REPO}/blobs/{digest_of(layer)}")
        assert (pulled.status_code, pulled.content) == (200, layer)
