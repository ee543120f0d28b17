"""``cargohold fsck`` on a data directory damaged by hand while the server is stopped.

Each test pushes through a real server, stops it, breaks the storage the way a disk, an
operator or a crash would (a blob deleted, a blob truncated, stray bytes under a valid
digest name, a stray upload, a session whose bytes are gone), then checks the report,
the exit code, what ``--repair`` does, and what the restarted server answers.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from tests.integration.helpers import OCI_MANIFEST, digest_of, image_manifest
from tests.integration.serverproc import ServerProcess, run_cli

if TYPE_CHECKING:
    from pathlib import Path

REPO = "fsck/app"
OLD = time.time() - 3 * 3600  # older than the default 1 h GC grace period


def blob_file(data_dir: Path, data: bytes) -> Path:
    hexdigest = hashlib.sha256(data).hexdigest()
    return data_dir / "storage" / "blobs" / "sha256" / hexdigest[:2] / hexdigest


def upload_file(data_dir: Path, upload_id: str) -> Path:
    return data_dir / "storage" / "uploads" / upload_id


def push_blob(client: httpx.Client, data: bytes, repo: str = REPO) -> None:
    response = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(data)}, content=data
    )
    assert response.status_code == 201, response.text


def fsck(data_dir: Path, *args: str) -> tuple[int, list[str]]:
    result = run_cli("fsck", *args, data_dir=data_dir)
    assert not result.stderr.strip() or "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout.splitlines()


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])


def make_old(path: Path) -> None:
    os.utime(path, (OLD, OLD))


@dataclass
class Damage:
    """What was broken, for the expectations."""

    missing: bytes
    truncated: bytes
    intact: bytes
    stray_old: Path
    stray_young: Path
    stray_unnamed: Path
    stray_upload: Path
    young_upload: Path
    hollow_session: str  # a session whose upload bytes were deleted

    def expected_report(self) -> list[str]:
        return [
            f"blob recorded but missing from storage: {digest_of(self.missing)}",
            f"blob of the wrong size in storage: {digest_of(self.truncated)}",
            f"bytes in storage with no record: sha256:{self.stray_old.name}",
            f"upload bytes with no session: {self.stray_upload.name}",
            f"upload session with no bytes: {self.hollow_session}",
        ]


def push_and_damage(server: ServerProcess) -> Damage:
    """Push three unreferenced blobs, open a session, stop the server, break things."""
    missing, truncated, intact = (os.urandom(6000) for _ in range(3))
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for data in (missing, truncated, intact):
            push_blob(client, data)
        opened = client.post(f"/v2/{REPO}/blobs/uploads/")
        assert opened.status_code == 202
        hollow = opened.headers["Location"].rsplit("/", 1)[-1]
    code, _ = server.terminate()
    assert code == 0

    data_dir = server.data_dir
    blob_file(data_dir, missing).unlink()
    with blob_file(data_dir, truncated).open("r+b") as handle:
        handle.truncate(1000)
    stray = os.urandom(
        4000
    )  # bytes stored under their own valid digest, never recorded
    stray_old = blob_file(data_dir, stray)
    stray_old.parent.mkdir(parents=True, exist_ok=True)
    stray_old.write_bytes(stray)
    make_old(stray_old)
    young = os.urandom(4000)  # same, but within the grace period: a push in progress
    stray_young = blob_file(data_dir, young)
    stray_young.parent.mkdir(parents=True, exist_ok=True)
    stray_young.write_bytes(young)
    stray_unnamed = stray_old.parent / "not-a-digest.tmp"  # not a blob at all
    stray_unnamed.write_bytes(b"junk")
    make_old(stray_unnamed)
    stray_upload = upload_file(data_dir, "ab" * 16)
    stray_upload.write_bytes(b"partial upload")
    make_old(stray_upload)
    young_upload = upload_file(data_dir, "cd" * 16)
    young_upload.write_bytes(b"upload being created")
    upload_file(data_dir, hollow).unlink()
    return Damage(
        missing, truncated, intact, stray_old, stray_young, stray_unnamed,
        stray_upload, young_upload, hollow,
    )  # fmt: skip


def test_fsck_on_a_healthy_data_dir_is_clean(server: ServerProcess) -> None:
    server.start()
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = os.urandom(10000)
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_blob(client, config)
        push_blob(client, layer)
        response = client.put(
            f"/v2/{REPO}/manifests/v1", content=image_manifest(config, [layer]),
            headers={"Content-Type": OCI_MANIFEST},
        )  # fmt: skip
        assert response.status_code == 201
    server.terminate()
    assert fsck(server.data_dir) == (0, ["0 problem(s) found, 0 repaired"])


def test_fsck_reports_each_kind_of_damage_and_repair_fixes_it(
    server: ServerProcess,
) -> None:
    damage = push_and_damage(server)
    data_dir = server.data_dir

    code, lines = fsck(data_dir)
    assert code == 1, lines
    assert lines == [
        *damage.expected_report(),
        "5 problem(s) found, 0 repaired",
        "run `cargohold fsck --repair` to fix them",
    ]
    # A check changes nothing.
    assert damage.stray_old.exists()
    assert damage.stray_upload.exists()

    code, lines = fsck(data_dir, "--repair")
    assert code == 0, lines
    assert lines == [*damage.expected_report(), "5 problem(s) found, 5 repaired"]
    assert not damage.stray_old.exists()
    assert not damage.stray_upload.exists()
    assert not blob_file(data_dir, damage.truncated).exists()
    # Young bytes may belong to a push in progress; a non-digest name is not a blob.
    assert damage.stray_young.exists()
    assert damage.young_upload.exists()
    assert damage.stray_unnamed.exists()
    assert blob_file(data_dir, damage.intact).exists()

    assert fsck(data_dir) == (0, ["0 problem(s) found, 0 repaired"])

    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for data in (damage.missing, damage.truncated):
            path = f"/v2/{REPO}/blobs/{digest_of(data)}"
            assert client.head(path).status_code == 404
            response = client.get(path)
            assert response.status_code == 404, response.text
            assert error_code(response) == "BLOB_UNKNOWN"
        response = client.get(f"/v2/{REPO}/blobs/{digest_of(damage.intact)}")
        assert response.status_code == 200
        assert response.content == damage.intact
        status = client.get(f"/v2/{REPO}/blobs/uploads/{damage.hollow_session}")
        assert status.status_code == 404
        assert error_code(status) == "BLOB_UPLOAD_UNKNOWN"
        # The forgotten blobs can simply be pushed again.
        for data in (damage.missing, damage.truncated):
            push_blob(client, data)
            response = client.get(f"/v2/{REPO}/blobs/{digest_of(data)}")
            assert response.status_code == 200
            assert response.content == data
    server.terminate()
    assert fsck(data_dir) == (0, ["0 problem(s) found, 0 repaired"])


def push_image_and_break_a_layer(server: ServerProcess) -> tuple[bytes, bytes, str]:
    """Push an image, stop, delete its layer's file; returns layer, manifest, digest."""
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = os.urandom(20000)
    manifest = image_manifest(config, [layer])
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        push_blob(client, config)
        push_blob(client, layer)
        response = client.put(
            f"/v2/{REPO}/manifests/v1", content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )  # fmt: skip
        assert response.status_code == 201
    server.terminate()
    blob_file(server.data_dir, layer).unlink()
    return layer, manifest, digest_of(manifest)


def test_missing_layer_of_a_manifest_answers_blob_unknown_before_and_after_repair(
    server: ServerProcess,
) -> None:
    layer, manifest, manifest_digest = push_image_and_break_a_layer(server)
    layer_path = f"/v2/{REPO}/blobs/{digest_of(layer)}"

    # Before repair: the server must not fail on the damage.
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        response = client.get(layer_path)
        assert response.status_code == 404, response.text
        assert error_code(response) == "BLOB_UNKNOWN"
        assert client.head(layer_path).status_code < 500
        assert client.get(f"/v2/{REPO}/manifests/v1").content == manifest
    server.terminate()

    code, lines = fsck(server.data_dir)
    assert code == 1
    assert lines[0] == f"blob recorded but missing from storage: {digest_of(layer)}"
    code, lines = fsck(server.data_dir, "--repair")
    # The record is repaired, but the manifest still needs the layer: --repair says so.
    assert code == 1, lines
    assert lines[-2] == "2 problem(s) found, 1 repaired"
    assert lines[-1].startswith("1 manifest reference(s) point at content that is gone")

    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        for method in ("HEAD", "GET"):
            response = client.request(method, layer_path)
            assert response.status_code == 404, (method, response.text)
        assert error_code(client.get(layer_path)) == "BLOB_UNKNOWN"
        # The manifest stays; pushing the layer again makes the image whole.
        response = client.get(f"/v2/{REPO}/manifests/{manifest_digest}")
        assert response.status_code == 200
        push_blob(client, layer)
        assert client.get(layer_path).content == layer
    server.terminate()
    assert fsck(server.data_dir) == (0, ["0 problem(s) found, 0 repaired"])


def test_repair_leaves_a_data_dir_that_fsck_accepts(server: ServerProcess) -> None:
    push_image_and_break_a_layer(server)
    repair_code, repair_lines = fsck(server.data_dir, "--repair")
    code, lines = fsck(server.data_dir)
    # Either the repair leaves nothing to report, or it says it could not fix it all.
    assert code == 0 or repair_code != 0, (repair_lines, lines)
