"""GC while the server runs: 20 pushers share layers and delete images, gc loops.

The issue's acceptance: a real ``cargohold serve`` (two workers), 20 threads pushing
images (a small pool of shared layers plus a unique layer and config per image, with
monolithic, two-step, mount and skip-if-present uploads) and deleting some of them
(tag only, or manifest and blob links), while ``cargohold gc`` runs back to back in
another process. Then every acknowledged image (manifest PUT answered 201, tag not
deleted by the test) must pull back byte for byte. No answer may be a 5xx.

The grace period is a few seconds (``GRACE_SECONDS``), not hours, so everything the
pushers delete becomes garbage while they still push; and every third pass runs with
a grace period of 0 (``SHARP``), which drops the links of every push in flight whose
manifest is not in yet. Such a push's manifest PUT answers ``MANIFEST_BLOB_UNKNOWN``
(not a loss: the pusher uploads the blobs again) or commits with every blob kept;
the same holds for a shared layer whose last image was deleted, skipped by the next
push that asks for it (HEAD 200) while gc drops its link. Only every third pass is
sharp: with a grace period of 0 on every pass, a push on a slow box loses its links
to nearly every pass and retries outgrow pushes (a CI run gave up 366 of 418 pushes),
a livelock that a real grace period exists to prevent.

An interleaving is one push attempt (its uploads and its manifest PUT) during which a
gc pass ran; the issue asks for at least 1,000. The push phase is also bounded in
time (``PUSH_SECONDS``) so a slow box stays inside the test's timeout.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.helpers import CONFIG, LAYER, OCI_MANIFEST, digest_of
from tests.integration.serverproc import NO_AUTH, ServerProcess, clean_environ, run_cli
from tests.prerequisites import skip_or_fail
from tests.s3server import MotoServer, create_bucket, storage_environ

PUSHERS = 20
IMAGES_PER_PUSHER = 70
SHARED_LAYERS = 6
MIN_INTERLEAVINGS = 1000
MIN_ACKNOWLEDGED = 500
MIN_ACKNOWLEDGED_S3 = 100
S3_GRACE_SECONDS = 10.0
PUT_ATTEMPTS = 20
# Pushers start no new image after this; well inside the test's timeout (600 s).
PUSH_SECONDS = 300.0
GRACE_SECONDS = 2.0
GRACE = {"CARGOHOLD_REGISTRY_GC_GRACE_HOURS": repr(GRACE_SECONDS / 3600)}
SHARP = "CARGOHOLD_REGISTRY_GC_GRACE_HOURS=0"
SEED = int(
    os.environ.get("CARGOHOLD_TEST_SEED", "0")
) or random.SystemRandom().randrange(1, 2**31)
ROOT = Path(__file__).resolve().parents[2]
# Read at import: the autouse fixture of tests/conftest.py clears CARGOHOLD_* variables.
POSTGRES_URL = os.environ.get("CARGOHOLD_TEST_POSTGRES_URL")


@dataclass
class Image:
    tag: str
    digest: str
    manifest: bytes
    blobs: dict[str, bytes]


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    server_errors: list[str] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    attempts: list[tuple[float, float]] = field(default_factory=list)
    blob_unknown: int = 0
    lost_puts: int = 0

    def check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 500:
            with self.lock:
                self.server_errors.append(
                    f"{response.request.method} {response.request.url.path}: "
                    f"{response.status_code} {response.text[:200]}"
                )
        return response


def shared_pool() -> list[bytes]:
    return [
        hashlib.sha256(b"shared %d" % n).digest() * 64 for n in range(SHARED_LAYERS)
    ]


class Pusher:
    def __init__(self, number: int, url: str, tally: Tally) -> None:
        self.number = number
        self.repo = f"stress/p{number}"
        self.client = httpx.Client(base_url=url, timeout=60.0)
        self.tally = tally
        self.rng = random.Random(SEED * 100 + number)  # noqa: S311 - a test's choices
        self.live: dict[str, Image] = {}

    def upload(self, data: bytes, *, allow_skip: bool) -> None:
        digest = digest_of(data)
        path = f"/v2/{self.repo}/blobs"
        way = self.rng.randrange(4)
        check = self.tally.check
        # A client that asks first, as docker does.
        asked = allow_skip and way == 0
        if asked and check(self.client.head(f"{path}/{digest}")).status_code == 200:
            return
        if allow_skip and way == 1:
            source = f"stress/p{self.rng.randrange(PUSHERS)}"
            response = check(
                self.client.post(
                    f"{path}/uploads/", params={"mount": digest, "from": source}
                )
            )
            if response.status_code == 201:
                return
            assert response.status_code == 202, response.text
            location = response.headers["Location"]
            done = check(
                self.client.put(location, params={"digest": digest}, content=data)
            )
            assert done.status_code == 201, done.text
            return
        if way == 2:  # POST, then PUT with the body
            opened = check(self.client.post(f"{path}/uploads/"))
            assert opened.status_code == 202, opened.text
            done = check(
                self.client.put(
                    opened.headers["Location"], params={"digest": digest}, content=data
                )
            )
            assert done.status_code == 201, done.text
            return
        done = check(
            self.client.post(
                f"{path}/uploads/", params={"digest": digest}, content=data
            )
        )
        assert done.status_code == 201, done.text

    def push(self, index: int, pool: list[bytes]) -> Image | None:
        config = json.dumps({"pusher": self.number, "image": index}).encode()
        layers = [*self.rng.sample(pool, 2), os.urandom(self.rng.randrange(500, 4000))]
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": CONFIG,
                    "digest": digest_of(config),
                    "size": len(config),
                },
                "layers": [
                    {"mediaType": LAYER, "digest": digest_of(x), "size": len(x)}
                    for x in layers
                ],
            }
        ).encode()
        tag = f"i{index}"
        skip = True
        for _ in range(PUT_ATTEMPTS):
            started = time.monotonic()
            for data in (config, *layers):
                self.upload(data, allow_skip=skip)
            response = self.tally.check(
                self.client.put(
                    f"/v2/{self.repo}/manifests/{tag}",
                    content=manifest,
                    headers={"Content-Type": OCI_MANIFEST},
                )
            )
            with self.tally.lock:
                self.tally.attempts.append((started, time.monotonic()))
            if response.status_code == 201:
                blobs = {digest_of(x): x for x in (config, *layers)}
                return Image(
                    tag, response.headers["Docker-Content-Digest"], manifest, blobs
                )
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
            with self.tally.lock:
                self.tally.blob_unknown += 1
            skip = False  # upload everything again
        with self.tally.lock:
            self.tally.lost_puts += 1
        return None

    def delete_one(self) -> None:
        tag = self.rng.choice(sorted(self.live))
        image = self.live.pop(tag)
        check = self.tally.check
        if self.rng.random() < 0.5:
            response = check(self.client.delete(f"/v2/{self.repo}/manifests/{tag}"))
            assert response.status_code == 202, response.text
            return
        response = check(
            self.client.delete(f"/v2/{self.repo}/manifests/{image.digest}")
        )
        assert response.status_code == 202, response.text
        still_used = {d for other in self.live.values() for d in other.blobs}
        for digest in image.blobs:
            if digest not in still_used:
                gone = check(self.client.delete(f"/v2/{self.repo}/blobs/{digest}"))
                assert gone.status_code in {202, 404}, gone.text

    def run(self, pool: list[bytes], deadline: float) -> None:
        with self.client:
            for index in range(IMAGES_PER_PUSHER):
                if time.monotonic() > deadline:
                    return
                started = time.monotonic()
                image = self.push(index, pool)
                with self.tally.lock:
                    self.tally.windows.append((started, time.monotonic()))
                if image is not None:
                    self.live[image.tag] = image
                if self.live and self.rng.random() < 0.3:
                    self.delete_one()

    def lost(self) -> list[str]:
        """Acknowledged images that do not pull back byte for byte."""
        lost = []
        with httpx.Client(base_url=str(self.client.base_url), timeout=60.0) as client:
            for tag, image in sorted(self.live.items()):
                got = self.tally.check(client.get(f"/v2/{self.repo}/manifests/{tag}"))
                if got.status_code != 200 or got.content != image.manifest:
                    lost.append(f"{self.repo}:{tag} manifest {got.status_code}")
                for digest, data in image.blobs.items():
                    blob = self.tally.check(
                        client.get(f"/v2/{self.repo}/blobs/{digest}")
                    )
                    if blob.status_code != 200 or blob.content != data:
                        lost.append(
                            f"{self.repo}:{tag} blob {digest} {blob.status_code}"
                        )
        return lost


def start_gc_loop(
    data_dir: Path, workdir: Path, settings: dict[str, str], *variants: str
) -> subprocess.Popen[bytes]:
    stop, out = workdir / "gc.stop", workdir / "gc.jsonl"
    argv = [sys.executable, "-m", "tests.integration.gc_loop"]
    with (workdir / "gc.log").open("wb") as log:
        return subprocess.Popen(
            [*argv, str(data_dir), str(stop), str(out), *variants],
            cwd=ROOT,
            env=clean_environ(**settings),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def interleavings(
    pushes: list[tuple[float, float]], passes: list[tuple[float, float]]
) -> int:
    """Push attempts during which at least one gc pass ran."""
    starts = [start for start, _ in passes]
    count = 0
    for begin, end in pushes:
        # Passes run one after another: of those that started before the push ended,
        # the last one overlaps the push if it ended after the push began.
        i = bisect.bisect_left(starts, end)
        if i and passes[i - 1][1] > begin:
            count += 1
    return count


def verify(pushers: list[Pusher]) -> list[str]:
    """Pull every acknowledged image back (in parallel); what did not match."""
    with ThreadPoolExecutor(PUSHERS) as executor:
        return [item for lost in executor.map(Pusher.lost, pushers) for item in lost]


def database_settings(database: str) -> dict[str, str]:
    """Server and CLI settings for ``database``; a fresh PostgreSQL schema if asked."""
    if database == "sqlite":
        return {}
    if not POSTGRES_URL:
        skip_or_fail("CARGOHOLD_TEST_POSTGRES_URL is not set")
    assert POSTGRES_URL is not None
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return {"CARGOHOLD_DATABASE_URL": POSTGRES_URL}


def cli_gc(
    data_dir: Path, settings: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    environ: dict[str, Any] = settings  # run_cli's **settings: str beside a timeout
    return run_cli("gc", *args, data_dir=data_dir, **environ)


@pytest.mark.parametrize(
    ("database", "storage"),
    [
        ("sqlite", "filesystem"),
        pytest.param("postgresql", "filesystem", marks=pytest.mark.slow),
        pytest.param("sqlite", "s3", marks=pytest.mark.slow),
    ],
)
def test_gc_loop_loses_no_acknowledged_push(
    server: ServerProcess,
    workdir: Path,
    database: str,
    storage: str,
    request: pytest.FixtureRequest,
) -> None:
    print(f"seed {SEED} (CARGOHOLD_TEST_SEED to repeat)")
    settings = {**GRACE, **database_settings(database)}
    variants: tuple[str, ...] = ("", "--delete-untagged", SHARP)
    minimum = MIN_ACKNOWLEDGED
    if storage == "s3":
        # A moto of its own: the session's holds every earlier test's objects.
        moto = MotoServer()
        moto.start()
        request.addfinalizer(moto.stop)
        settings |= storage_environ(moto.url, create_bucket(moto.url))
        # moto shares the two cores: a push takes seconds, so a 2 s grace period and
        # a sharp pass in three gave most pushes up in CI (104 of 274). Slower pushes
        # get a longer grace and rarer sharp passes; the proof is the same (sharp
        # passes raced pushes, nothing acknowledged was lost), over fewer images.
        settings |= {"CARGOHOLD_REGISTRY_GC_GRACE_HOURS": repr(S3_GRACE_SECONDS / 3600)}
        variants = ("", "", "--delete-untagged", "", "", SHARP)
        minimum = MIN_ACKNOWLEDGED_S3
    server.settings = {**NO_AUTH, **settings, "CARGOHOLD_SERVER_WORKERS": "2"}
    server.start()
    # One pass first: creates the schema's newest revision before the race begins.
    first = cli_gc(server.data_dir, settings)
    assert first.returncode == 0, first.stderr
    tally = Tally()
    pool = shared_pool()
    pushers = [Pusher(n, server.url, tally) for n in range(PUSHERS)]
    gc = start_gc_loop(server.data_dir, workdir, settings, *variants)
    try:
        with ThreadPoolExecutor(PUSHERS) as executor:
            deadline = time.monotonic() + PUSH_SECONDS
            for future in [executor.submit(p.run, pool, deadline) for p in pushers]:
                future.result()
    finally:
        (workdir / "gc.stop").touch()
        gc.wait(timeout=120)
    passes = [
        (line["start"], line["end"])
        for line in map(json.loads, (workdir / "gc.jsonl").read_text().splitlines())
    ]
    freed = sum(
        int(json.loads(line)["out"].split()[1])
        for line in (workdir / "gc.jsonl").read_text().splitlines()
    )
    assert gc.returncode == 0, (workdir / "gc.log").read_text()[-3000:]
    overlapped = interleavings(sorted(tally.attempts), passes)
    print(
        f"{len(tally.windows)} pushes in {len(tally.attempts)} attempts, "
        f"{len(passes)} gc passes, {overlapped} attempts overlapped a pass, "
        f"{freed} blobs deleted, {tally.blob_unknown} MANIFEST_BLOB_UNKNOWN, "
        f"{tally.lost_puts} pushes given up"
    )
    assert tally.server_errors == []
    lost = verify(pushers)
    assert lost == [], f"{len(lost)} lost (seed {SEED}): {lost[:20]}"
    # And a last collection from the CLI removes nothing a tag still needs.
    last = cli_gc(server.data_dir, settings, "--delete-untagged")
    assert last.returncode == 0, last.stderr
    assert verify(pushers) == []
    assert tally.server_errors == []
    assert overlapped >= MIN_INTERLEAVINGS
    assert freed > 0
    assert tally.blob_unknown > 0, "no sharp pass raced a push: the test proves little"
    # The no-loss check above must have covered many acknowledged images.
    acknowledged = len(tally.windows) - tally.lost_puts
    assert acknowledged >= minimum, (acknowledged, tally.lost_puts)
    assert tally.lost_puts <= len(tally.windows) // 10, tally.lost_puts
