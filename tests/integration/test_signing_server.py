"""Signing across processes: two workers sign a queue once, and a kill -9 in the
middle of signing loses nothing (and signs nothing twice). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.outbox import SIGN
from cargohold.registry.signing.file_keys import FileKeyStore, ecdsa_key_id
from tests.contract.conftest import POSTGRES_URL, POSTGRES_URL_VARIABLE, reset
from tests.integration.helpers import push_image_to
from tests.integration.serverproc import ServerProcess, check_log, run_cli
from tests.prerequisites import require, skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

IMAGES = 40
WAIT = 120.0
REPO = "acme/app"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    data = tmp_path / "data"
    data.mkdir()
    if request.param == "sqlite":
        db = Database(f"sqlite:///{(data / 'cargohold.db').resolve()}")
    else:
        if not POSTGRES_URL:
            skip_or_fail(f"{POSTGRES_URL_VARIABLE} is not set")
        db = Database(POSTGRES_URL)
        reset(db)
    upgrade(db)
    yield db
    asyncio.run(db.close())


def _settings(database: Database, **extra: str) -> dict[str, str]:
    settings = {
        "CARGOHOLD_AUTH_MODE": "none",
        "CARGOHOLD_SBOM_ENABLED": "false",
        "CARGOHOLD_OUTBOX_POLL_INTERVAL_SECONDS": "0.1",
        "CARGOHOLD_OUTBOX_LEASE_SECONDS": "2",
        "CARGOHOLD_OUTBOX_BASE_DELAY_SECONDS": "0.5",
    } | extra
    if not database.is_sqlite:
        settings["CARGOHOLD_DATABASE_URL"] = database.url
    return settings


@pytest.fixture
def server(
    tmp_path: Path, database: Database, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    require("gpg", "gpgconf")
    process = ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        settings=_settings(database, CARGOHOLD_SERVER_WORKERS="2"),
    )
    try:
        yield process
    finally:
        process.stop()
        # The gpg-agent a worker started outlives a kill -9 of the server.
        FileKeyStore(tmp_path / "data" / "signing", identity="").close()
    check_log(process, request)


def sign_states(db: Database) -> Counter[str]:
    query = sa.select(t.outbox.c.state).where(t.outbox.c.channel == SIGN)
    return Counter(db.run_sync(lambda conn: conn.execute(query).scalars().all()))


def signatures_per_manifest(db: Database) -> Counter[str]:
    query = sa.select(t.image_signatures.c.digest).where(
        t.image_signatures.c.key_id.is_not(None)
    )
    return Counter(db.run_sync(lambda conn: conn.execute(query).scalars().all()))


def wait_for(what: str, check: Callable[[], bool], server: ServerProcess) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {WAIT:.0f}s\n{server.log_tail()}")
        time.sleep(0.02)


def test_kill_during_signing_loses_and_duplicates_nothing(
    server: ServerProcess, database: Database
) -> None:
    # Images pushed while signing is off; then a queue of sign jobs (resign).
    server.start()
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        digests = {
            push_image_to(client, REPO, f"v{i}", seed=f"s{i}") for i in range(IMAGES)
        }
    server.terminate()
    assert sign_states(database) == Counter()
    # Any: run_cli takes settings as keywords beside its own (typed) ones.
    enabled: dict[str, Any] = _settings(database, CARGOHOLD_SIGNING_ENABLED="true")
    made = run_cli("signing", "keygen", data_dir=server.data_dir, **enabled)
    assert made.returncode == 0, made.stderr
    queued = run_cli("signing", "resign", REPO, data_dir=server.data_dir, **enabled)
    assert queued.returncode == 0, queued.stderr
    assert f"queued {IMAGES} manifest(s)" in queued.stdout
    assert sign_states(database) == Counter({"pending": IMAGES})

    server.settings = server.settings | {"CARGOHOLD_SIGNING_ENABLED": "true"}
    server.start()
    wait_for(
        "the first signature", lambda: bool(signatures_per_manifest(database)), server
    )
    server.kill()
    at_kill = sign_states(database)

    server.start()  # the dead workers' leases run out after 2 s
    wait_for(
        "every sign job done",
        lambda: sign_states(database) == Counter({"done": IMAGES}),
        server,
    )
    signed = signatures_per_manifest(database)
    assert set(signed) == digests  # nothing lost
    assert set(signed.values()) == {1}, f"signed twice: {signed}; at kill {at_kill}"

    status = run_cli("signing", "status", "--json", data_dir=server.data_dir, **enabled)
    assert status.returncode == 0, status.stderr
    assert f'"done": {IMAGES}' in status.stdout


def test_signing_cli_makes_rotates_and_prints_keys(tmp_path: Path) -> None:
    require("gpg", "gpgconf")
    data = tmp_path / "data"
    data.mkdir()
    try:
        made = run_cli("signing", "keygen", data_dir=data)
        assert made.returncode == 0, made.stderr
        again = run_cli("signing", "keygen", data_dir=data)
        assert again.returncode == 1
        assert "--rotate" in again.stderr
        pem = run_cli("signing", "public-key", data_dir=data)
        public = serialization.load_pem_public_key(pem.stdout.encode())
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert f"made ecdsa-p256 key {ecdsa_key_id(public)}" in made.stdout
        rotated = run_cli("signing", "keygen", "--rotate", data_dir=data)
        assert rotated.returncode == 0, rotated.stderr
        armored = run_cli("signing", "public-key", "--format", "gpg", data_dir=data)
        shown = subprocess.run(
            ["gpg", "--batch", "--with-colons", "--show-keys"],
            input=armored.stdout, capture_output=True, text=True, timeout=60,
            check=True, env=os.environ | {"GNUPGHOME": str(tmp_path)},
        ).stdout  # fmt: skip
        fingerprints = [
            line.split(":")[9] for line in shown.splitlines() if line[:4] == "fpr:"
        ]
        assert len(fingerprints) == 2  # the active and the retired OpenPGP key
        status = run_cli("signing", "status", data_dir=data)
        assert status.returncode == 0, status.stderr
        assert status.stdout.count("retired") == 2
        assert status.stdout.count("active") == 2
        refused = run_cli("signing", "resign", "acme/app", data_dir=data)
        assert refused.returncode == 1
        assert "signing is not enabled" in refused.stderr
    finally:
        FileKeyStore(data / "signing", identity="").close()
