"""``cargohold migrate-storage``: every blob copied, hashed back at the destination, and
a second run (after a kill -9, or after damage at the destination) finishing the job.

The destination is a parameter: ``DESTINATIONS`` maps a backend name to a factory that
writes a configuration file naming a fresh, empty store of that backend. To run every
test against another backend, add its factory there (the S3 one asks for the
``s3_endpoint`` fixture through ``request.getfixturevalue``). The source is the
embedded default, a filesystem store under a data directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, TypeVar

import httpx
import pytest
import structlog
from click.testing import CliRunner, Result

from cargohold import settings as settings_module
from cargohold.api.app import build_store, create_app, open_services
from cargohold.cli import main
from cargohold.oci.digest import Digest
from tests.integration.helpers import digest_of, push_image
from tests.integration.serverproc import clean_environ
from tests.s3server import create_bucket, storage_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
    from pathlib import Path

    from cargohold.storage.base import BlobStore

KILL_AFTER = 10  # blobs verified before the kill
KILL_WAIT = 60.0


def filesystem_destination(_request: pytest.FixtureRequest, directory: Path) -> Path:
    config = directory / "destination.toml"
    config.write_text(
        f'data_dir = "{directory / "destination"}"\n\n'
        '[storage]\nbackend = "filesystem"\n'
    )
    return config


def s3_destination(request: pytest.FixtureRequest, directory: Path) -> Path:
    endpoint: str = request.getfixturevalue("s3_endpoint")
    table = storage_settings(endpoint, create_bucket(endpoint))
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
    config = directory / "destination.toml"
    config.write_text(f'data_dir = "{directory / "destination"}"\n\n[storage]\n{lines}')
    return config


# backend -> factory: (the test's request, a fresh directory) -> a configuration file
# whose [storage] section names an empty store of that backend.
T = TypeVar("T")

DESTINATIONS: dict[str, Callable[[pytest.FixtureRequest, Path], Path]] = {
    "filesystem": filesystem_destination,
    "s3": s3_destination,
}


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The command points structlog at the runner's stderr; undo that after."""
    yield
    structlog.reset_defaults()


@pytest.fixture(params=sorted(DESTINATIONS))
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A configuration file naming an empty destination store."""
    directory = tmp_path / "to"
    directory.mkdir()
    return DESTINATIONS[request.param](request, directory)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The source data directory (a filesystem store under ``storage/``)."""
    path = tmp_path / "data"
    path.mkdir()
    return path


def store_of(where: Path) -> BlobStore:
    """The store a configuration file names, or the one under a data directory."""
    if where.is_dir():
        return build_store(settings_module.load(None, {}, {"data_dir": where}))
    return build_store(settings_module.load(where, {}))


def on_store(where: Path, action: Callable[[BlobStore], Awaitable[T]]) -> T:
    """Run ``action`` on a store built inside its own event loop (a client-backed
    store, such as S3's, belongs to the loop that made it)."""

    async def run() -> T:
        store = store_of(where)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


def migrate(source: Path, destination: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["migrate-storage", "--data-dir", str(source), "--to", str(destination), *args],
    )


def summary(result: Result) -> str:
    return result.stdout.strip().splitlines()[-1]


async def put(store: BlobStore, data: bytes, *, digest: Digest | None = None) -> Digest:
    """Commit ``data`` by the protocol; under ``digest``: wrong bytes on purpose."""
    digest = digest or Digest.of(data)
    upload_id = uuid.uuid4().hex
    await store.begin_upload(upload_id)

    async def body() -> AsyncIterator[bytes]:
        yield data

    size = await store.append(upload_id, 0, body(), None)
    await store.commit(upload_id, digest, size=size)
    return digest


async def contents(store: BlobStore) -> dict[str, bytes]:
    found = {}
    async for digest, _ in store.iter_digests():
        found[str(digest)] = b"".join([chunk async for chunk in store.open(digest)])
    return found


def blobs_at(where: Path) -> dict[str, bytes]:
    return on_store(where, contents)


def add_blobs(where: Path, count: int, size: int, rng: random.Random) -> None:
    async def fill(store: BlobStore) -> None:
        for _ in range(count):
            await put(store, rng.randbytes(size))

    on_store(where, fill)


def test_every_blob_is_copied_and_read_back(
    source: Path, destination: Path, tmp_path: Path
) -> None:
    settings = settings_module.load(
        None, {}, {"data_dir": source, "auth": {"mode": "none"}}
    )
    pushed = push_images(settings, count=3)  # a config and a layer each
    orphan = on_store(source, lambda store: put(store, b"bytes no manifest uses"))

    first = migrate(source, destination, "--referenced-only")
    assert first.exit_code == 0, first.output
    assert summary(first).startswith("6 blob(s)"), first.output
    assert "6 copied" in summary(first)
    copied = blobs_at(destination)
    assert set(copied) == pushed
    assert all(digest_of(data) == digest for digest, data in copied.items())

    second = migrate(source, destination)
    assert second.exit_code == 0, second.output
    assert "1 copied, 0 already there, 6 verified by an earlier run" in summary(second)
    assert blobs_at(destination) == blobs_at(source)
    assert str(orphan) in blobs_at(destination)
    # The source is only read: nothing of the migration lands in its data directory.
    assert not (source / "migrate-storage.journal").exists()
    assert (tmp_path / "to" / "destination" / "migrate-storage.journal").is_file()


def push_images(settings: settings_module.Settings, *, count: int) -> set[str]:
    """Push ``count`` images through the HTTP API of an in-process registry."""

    async def run() -> None:
        services = open_services(settings)
        await services.start()
        transport = httpx.ASGITransport(app=create_app(settings, services=services))
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://registry.test"
            ) as client:
                for n in range(count):
                    await push_image(client, f"migrate/app{n}", "v1", seed=str(n))
        finally:
            await services.close()

    asyncio.run(run())
    return set(blobs_at(settings.data_dir))


def test_damage_at_the_destination_is_found_and_repaired(
    source: Path, destination: Path, rng: random.Random
) -> None:
    add_blobs(source, 6, 4096, rng)
    assert migrate(source, destination).exit_code == 0
    originals = blobs_at(destination)
    same_size, shorter = sorted(originals)[:2]

    async def damage(target: BlobStore) -> None:
        for digest, data in ((same_size, b"X" * 4096), (shorter, b"short")):
            await target.delete(Digest.parse(digest))
            await put(target, data, digest=Digest.parse(digest))

    on_store(destination, damage)
    assert blobs_at(destination) != originals

    # Trusted from the journal only with the right size: the short one is copied again.
    again = migrate(source, destination)
    assert again.exit_code == 0, again.output
    assert "1 replaced" in summary(again), again.output
    assert blobs_at(destination)[shorter] == originals[shorter]
    assert blobs_at(destination)[same_size] != originals[same_size]

    # --recheck reads every blob back: same size, wrong bytes is found too.
    rechecked = migrate(source, destination, "--recheck")
    assert rechecked.exit_code == 0, rechecked.output
    assert "1 copied, 5 already there" in summary(rechecked), rechecked.output
    assert "1 replaced" in summary(rechecked)
    assert blobs_at(destination) == originals


def test_blobs_present_without_a_journal_are_read_back(
    source: Path, destination: Path, tmp_path: Path, rng: random.Random
) -> None:
    add_blobs(source, 4, 2048, rng)
    assert migrate(source, destination).exit_code == 0
    originals = blobs_at(destination)
    victim = Digest.parse(min(originals))

    async def damage(target: BlobStore) -> None:
        await target.delete(victim)
        await put(target, bytes(2048), digest=victim)

    on_store(destination, damage)
    (tmp_path / "to" / "destination" / "migrate-storage.journal").unlink()
    again = migrate(source, destination)
    assert again.exit_code == 0, again.output
    assert "1 copied, 3 already there, 0 verified by an earlier run" in summary(again)
    assert blobs_at(destination) == originals


def test_a_source_blob_with_wrong_bytes_is_reported_not_copied(
    source: Path, destination: Path, rng: random.Random
) -> None:
    add_blobs(source, 3, 1024, rng)
    bad = Digest.of(b"what the name promises")
    on_store(source, lambda store: put(store, b"something else entirely", digest=bad))

    result = migrate(source, destination)
    assert result.exit_code == 1, result.output
    assert f"failed: {bad}: the source's bytes do not match the digest" in result.stderr
    assert "3 copied" in summary(result)
    assert str(bad) not in blobs_at(destination)


def test_the_destination_must_be_another_store(source: Path, tmp_path: Path) -> None:
    config = tmp_path / "same.toml"
    config.write_text(f'data_dir = "{source}"\n')
    result = migrate(source, config)
    assert result.exit_code == 2
    assert "the destination is the source store" in result.output


def test_a_killed_run_resumes_where_it_stopped(
    source: Path, destination: Path, tmp_path: Path, rng: random.Random
) -> None:
    total = 120
    add_blobs(source, total, 32 * 1024, rng)
    journal = tmp_path / "to" / "destination" / "migrate-storage.journal"
    argv = [
        sys.executable, "-m", "cargohold", "migrate-storage",
        "--data-dir", str(source), "--to", str(destination), "--concurrency", "1",
    ]  # fmt: skip
    process = subprocess.Popen(
        argv,
        env=clean_environ(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + KILL_WAIT
        while time.monotonic() < deadline and process.poll() is None:
            if journal.exists() and verified(journal) >= KILL_AFTER:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=10)
    before = verified(journal)
    assert KILL_AFTER <= before < total

    again = migrate(source, destination)
    assert again.exit_code == 0, again.output
    line = summary(again)
    assert line.startswith(f"{total} blob(s)")
    # What the killed run verified is trusted; what it was writing is copied (or, if
    # its commit landed, read back) again.
    skipped = int(line.split(" already there, ")[1].split(" verified")[0])
    assert skipped == before, line
    assert blobs_at(destination) == blobs_at(source)


def verified(journal: Path) -> int:
    """Blobs the journal records as verified (its first line names the store)."""
    return sum(1 for line in journal.read_text().splitlines() if line[:1] != "#")
