"""``cargohold gc`` from the CLI against a running server: what it deletes and keeps.

Dry run, ``--delete-untagged``, the grace period, orphan bytes, and tombstones a killed
collector left behind (written into the database as a collector would have, since a
``kill -9`` between two statements cannot be aimed at from outside).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

import httpx

from tests.integration.helpers import OCI_MANIFEST, digest_of, image_manifest
from tests.integration.serverproc import ServerProcess, run_cli

if TYPE_CHECKING:
    from pathlib import Path

REPO = "gc/app"
OLD = time.time() - 3 * 3600  # older than the default 1 h grace period


def blob_file(data_dir: Path, data: bytes) -> Path:
    hexdigest = hashlib.sha256(data).hexdigest()
    return data_dir / "storage" / "blobs" / "sha256" / hexdigest[:2] / hexdigest


def gc(data_dir: Path, *args: str, no_grace: bool = False) -> list[str]:
    if no_grace:
        result = run_cli(
            "gc", *args, data_dir=data_dir, CARGOHOLD_REGISTRY_GC_GRACE_HOURS="0"
        )
    else:
        result = run_cli("gc", *args, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def push_blob(client: httpx.Client, data: bytes) -> None:
    response = client.post(
        f"/v2/{REPO}/blobs/uploads/", params={"digest": digest_of(data)}, content=data
    )
    assert response.status_code == 201, response.text


def push_image(client: httpx.Client, tag: str, *blobs: bytes) -> str:
    for data in blobs:
        push_blob(client, data)
    response = client.put(
        f"/v2/{REPO}/manifests/{tag}",
        content=image_manifest(blobs[0], list(blobs[1:])),
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]


def sql(data_dir: Path, statement: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "cargohold.db", timeout=30) as db:
        return db.execute(statement, params).fetchall()


def files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "storage" / "blobs").rglob("*") if p.is_file()}


def test_dry_run_tells_what_a_run_then_deletes(server: ServerProcess) -> None:
    server.start()
    kept = [b'{"kept": 1}', os.urandom(3000)]
    untagged = [b'{"untagged": 1}', os.urandom(2000)]
    loose = os.urandom(1000)
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_image(client, "kept", *kept)
        untagged_digest = push_image(client, "old", *untagged)
        assert client.delete(f"/v2/{REPO}/manifests/old").status_code == 202
        push_blob(client, loose)
        before = files(server.data_dir)

        lines = gc(server.data_dir, "--dry-run", "--delete-untagged", no_grace=True)
        assert files(server.data_dir) == before  # nothing deleted
        assert f"would delete manifest: {REPO}@{untagged_digest}" in lines
        assert f"would unlink blob: {REPO}@{digest_of(loose)}" in lines
        doomed = [*untagged, loose]
        for data in doomed:
            assert f"would delete blob: {digest_of(data)} ({len(data)} bytes)" in lines
        size = sum(len(data) for data in doomed)
        assert lines[-1].startswith(f"would delete 3 blob(s), {size} bytes; ")
        assert lines[-1].endswith(f"reclaimable: {size} bytes")
        # Without --delete-untagged the untagged manifest keeps its blobs.
        lines = gc(server.data_dir, "--dry-run", no_grace=True)
        assert lines[-1].startswith(f"would delete 1 blob(s), {len(loose)} bytes; ")

        lines = gc(server.data_dir, "--delete-untagged", no_grace=True)
        assert lines[-1] == (
            f"deleted 3 blob(s), {size} bytes; 3 link(s), 1 manifest(s); "
            "expired 0 upload(s); reclaimable: 0 bytes"
        )
        assert files(server.data_dir) == before - {
            blob_file(server.data_dir, data).name for data in doomed
        }
        for data in kept:
            pulled = client.get(f"/v2/{REPO}/blobs/{digest_of(data)}")
            assert pulled.status_code == 200
            assert pulled.content == data
        gone = client.get(f"/v2/{REPO}/manifests/{untagged_digest}")
        assert gone.status_code == 404


def test_the_grace_period_keeps_recent_content(server: ServerProcess) -> None:
    server.start()
    loose = os.urandom(1000)
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_blob(client, loose)
        assert client.delete(f"/v2/{REPO}/blobs/{digest_of(loose)}").status_code == 202
    lines = gc(server.data_dir, "--delete-untagged")  # default grace: 1 h
    assert lines[-1].startswith("deleted 0 blob(s), 0 bytes; 0 link(s), 0 manifest(s)")
    assert lines[-1].endswith(f"reclaimable: {len(loose)} bytes")
    assert blob_file(server.data_dir, loose).exists()


def test_orphan_bytes_older_than_grace_are_deleted(server: ServerProcess) -> None:
    server.start()
    old, young = os.urandom(4000), os.urandom(3000)
    for data in (old, young):
        path = blob_file(server.data_dir, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    os.utime(blob_file(server.data_dir, old), (OLD, OLD))
    assert gc(server.data_dir, "--dry-run")[0] == (
        f"would delete blob: {digest_of(old)} ({len(old)} bytes)"
    )
    assert gc(server.data_dir)[-1].startswith(f"deleted 1 blob(s), {len(old)} bytes")
    assert not blob_file(server.data_dir, old).exists()
    assert blob_file(server.data_dir, young).exists()
    assert sql(server.data_dir, "SELECT count(*) FROM blobs") == [(0,)]
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_blob(client, old)  # the same content pushed again is whole
        pulled = client.get(f"/v2/{REPO}/blobs/{digest_of(old)}")
        assert pulled.content == old


def kill_while_deleting(data_dir: Path, data: bytes, *, lease: float) -> None:
    """Leave ``data`` as a collector killed after marking it would: a tombstone."""
    sql(
        data_dir,
        "UPDATE blobs SET state = 'deleting', touched_at = ? WHERE digest = ?",
        lease,
        digest_of(data),
    )


def test_a_killed_collectors_tombstones_are_completed(server: ServerProcess) -> None:
    server.start()
    by_gc, by_push = os.urandom(2000), os.urandom(2500)
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for data in (by_gc, by_push):
            push_blob(client, data)
            assert (
                client.delete(f"/v2/{REPO}/blobs/{digest_of(data)}").status_code == 202
            )
            kill_while_deleting(server.data_dir, data, lease=OLD)
        result = run_cli("fsck", data_dir=server.data_dir)
        assert result.returncode == 1
        assert (
            f"blob deletion interrupted (gc killed): {digest_of(by_gc)}"
            in result.stdout.splitlines()
        )

        # An upload of the same content completes the deletion, then commits anew.
        push_blob(client, by_push)
        pulled = client.get(f"/v2/{REPO}/blobs/{digest_of(by_push)}")
        assert pulled.status_code == 200
        assert pulled.content == by_push
        # The next collection completes the other (its bytes were still there).
        assert blob_file(server.data_dir, by_gc).exists()
        lines = gc(server.data_dir)  # even within the grace period
        assert lines[-1].startswith(f"deleted 1 blob(s), {len(by_gc)} bytes")
        assert not blob_file(server.data_dir, by_gc).exists()
        assert sql(server.data_dir, "SELECT state FROM blobs") == [("present",)]
        assert run_cli("fsck", data_dir=server.data_dir).returncode == 0


def test_a_push_waits_for_a_live_collector_to_finish(server: ServerProcess) -> None:
    """A fresh tombstone belongs to a running collector: the upload of that content
    waits until the collector dropped it, then commits its own bytes."""
    server.start()
    data = os.urandom(2000)
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_blob(client, data)
        assert client.delete(f"/v2/{REPO}/blobs/{digest_of(data)}").status_code == 202
    kill_while_deleting(server.data_dir, data, lease=time.time())
    answers: list[httpx.Response] = []

    def push() -> None:
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            answers.append(
                client.post(
                    f"/v2/{REPO}/blobs/uploads/",
                    params={"digest": digest_of(data)},
                    content=data,
                )
            )

    pusher = threading.Thread(target=push)
    pusher.start()
    pusher.join(timeout=1.0)
    assert answers == []  # cannot finish while the tombstone is there
    # The collector deletes the bytes and drops its tombstone.
    blob_file(server.data_dir, data).unlink()
    sql(server.data_dir, "DELETE FROM blobs WHERE digest = ?", digest_of(data))
    pusher.join(timeout=30.0)
    assert [a.status_code for a in answers] == [201]
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        assert client.get(f"/v2/{REPO}/blobs/{digest_of(data)}").content == data
