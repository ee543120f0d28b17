"""``cargohold migrate-metadata``: a registry's metadata moved to another database.

The end-to-end test runs a real ``cargohold serve`` on SQLite (accounts, an
organization, a pull token, pushes, pulls, an advisory), stops it, migrates, and starts
``cargohold serve`` on the destination over the same blobs: the same manifests and
blobs, the same logins, and new writes (whose ids come from sequences) work. The other
tests interrupt runs (an exception from the progress callback, a write to the source, a
``kill -9`` of the command) and check that the next run finishes the same copy without
duplicates. Every destination is a fresh database: SQLite and, with
``CARGOHOLD_TEST_POSTGRES_URL``, PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
import structlog
from click.testing import CliRunner

from cargohold import settings as settings_module
from cargohold.api.app import create_app, open_services
from cargohold.cli import main
from cargohold.metadata import schema
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.transfer import (
    DestinationInUse,
    MetadataTransfer,
    VerificationFailed,
)
from cargohold.metadata.transfer_ends import PROGRESS_TABLE
from tests.databases import fresh_database, fresh_postgres_database
from tests.integration.helpers import push_image, push_image_to
from tests.integration.serverproc import (
    ServerProcess,
    check_log,
    clean_environ,
    free_port,
    run_cli,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROOT = ("root", "root-password-123")
ALICE = ("alice", "alice-password-123")
TOKEN_AUTH = {
    "CARGOHOLD_AUTH_MODE": "token",
    "CARGOHOLD_ADMIN_USER": ROOT[0],
    "CARGOHOLD_ADMIN_PASSWORD": ROOT[1],
}
API = "/api/v1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGES = (("acme/app", "v1"), ("acme/app", "v2"), ("acme/tools", "latest"))
WAIT = 30.0  # bound on waiting for a background flush or a blocked writer


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The command points structlog at the runner's stderr; undo that after."""
    yield
    structlog.reset_defaults()


@pytest.fixture(params=["sqlite", "postgresql"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty destination database."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


# -- reading both sides independently of the command -----------------------------------


def _normal(column: sa.Column[Any], value: Any) -> Any:
    """A value as both databases must hand it back (SQLite may keep 0 for 0.0)."""
    if value is None:
        return None
    if isinstance(column.type, sa.Float):
        return float(value)
    if isinstance(column.type, sa.LargeBinary):
        return bytes(value)
    return value


def rows_of(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the schema, normalised and sorted."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: sorted(
                    (
                        tuple(
                            _normal(c, v)
                            for c, v in zip(table.columns, row, strict=True)
                        )
                        for row in conn.execute(sa.select(table))
                    ),
                    key=repr,
                )
                for table in schema.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def has_progress_table(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sa.inspect(conn).has_table(PROGRESS_TABLE)
    finally:
        engine.dispose()


# -- a source registry -----------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> str:
    """The SQLite URL of an in-process registry's metadata after a few pushes."""
    data_dir = tmp_path / "data"
    settings = settings_module.load(
        None, {}, {"data_dir": data_dir, "auth": {"mode": "none"}}
    )

    async def run() -> None:
        services = open_services(settings)
        await services.start()
        transport = httpx.ASGITransport(app=create_app(settings, services=services))
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://registry.test"
            ) as client:
                for n in range(4):
                    await push_image(client, f"migrate/app{n}", "v1", seed=str(n))
        finally:
            await services.close()

    asyncio.run(run())
    return settings.database_url


class Interrupted(Exception):
    """Raised from the progress callback to stop a run mid-table."""


def stop_at(table: str, rows: int) -> Any:
    def after_batch(name: str, copied: int) -> None:
        if (name, copied) == (table, rows):
            raise Interrupted

    return after_batch


# -- the end-to-end test ---------------------------------------------------------------


def bearer(client: httpx.Client, scope: str, auth: tuple[str, str]) -> dict[str, str]:
    response = client.get(
        "/token", params={"service": "cargohold", "scope": scope}, auth=auth
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def call(
    client: httpx.Client, method: str, path: str, body: Any = None, status: int = 200
) -> Any:
    response = client.request(method, API + path, json=body, auth=ROOT)
    assert response.status_code == status, (method, path, response.text)
    return response.json() if response.content else None


def populate(client: httpx.Client) -> str:
    """Accounts, pushes, pulls and an advisory through the API; the pull token."""
    call(client, "POST", "/orgs", {"name": "acme"}, 201)
    call(client, "POST", "/users", {"name": ALICE[0], "password": ALICE[1]}, 201)
    call(client, "PUT", "/orgs/acme/members/alice", {"role": "owner"})
    created = call(client, "POST", "/orgs/acme/tokens", {"description": "ci"}, 201)
    for n, (repo, tag) in enumerate(IMAGES):
        push_image_to(
            client,
            repo,
            tag,
            seed=str(n),
            headers=bearer(client, f"repository:{repo}:pull,push", ALICE),
        )
    pull = bearer(client, "repository:acme/app:pull", ("ci", created["secret"]))
    assert client.get("/v2/acme/app/manifests/v1", headers=pull).status_code == 200
    advisory = {
        "id": "CH-1",
        "title": "libfoo",
        "severity": "high",
        "state": "current",
        "affected": [{"repository": "acme/app", "tags": ["v*"]}],
    }
    call(client, "POST", "/advisories", advisory, 201)
    deadline = time.monotonic() + WAIT  # pull events are written every second
    while not call(client, "GET", "/pulls")["pulls"]:
        assert time.monotonic() < deadline, "the pull was never recorded"
        time.sleep(0.1)
    return str(created["secret"])


def served(client: httpx.Client, auth: tuple[str, str]) -> dict[str, Any]:
    """Every image of ``IMAGES`` as a client pulls it: manifest, digest and blobs."""
    seen: dict[str, Any] = {}
    for repo, tag in IMAGES:
        headers = bearer(client, f"repository:{repo}:pull", auth)
        response = client.get(
            f"/v2/{repo}/manifests/{tag}", headers=headers | {"Accept": OCI_MANIFEST}
        )
        assert response.status_code == 200, response.text
        manifest = response.json()
        blobs = [
            client.get(f"/v2/{repo}/blobs/{d['digest']}", headers=headers).content
            for d in [manifest["config"], *manifest["layers"]]
        ]
        seen[f"{repo}:{tag}"] = (
            response.headers["Docker-Content-Digest"],
            response.content,
            blobs,
        )
    return seen


def test_a_registry_moves_and_serves_the_same(
    workdir: Path, destination: str, request: pytest.FixtureRequest
) -> None:
    data = workdir / "data"
    before = ServerProcess(data, workdir / "source.log", settings=TOKEN_AUTH)
    before.start()
    try:
        with httpx.Client(base_url=before.url, timeout=20.0) as client:
            secret = populate(client)
            images = served(client, ALICE)
            pulls = call(client, "GET", "/pulls")["pulls"]
    finally:
        before.stop()  # stop writers first, as the operations guide says
    check_log(before, request)
    source = f"sqlite:///{data / 'cargohold.db'}"

    moved = run_cli(
        "migrate-metadata", "--batch-size", "7", data_dir=data,
        CARGOHOLD_MIGRATE_TO=destination,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert "verified: every table's row count and checksum are equal" in moved.stdout
    assert "table verified" in moved.stderr
    expected = rows_of(source)
    assert expected["manifests"]
    assert expected["pull_events"]
    assert rows_of(destination) == expected
    assert not has_progress_table(destination)

    settings = TOKEN_AUTH | {"CARGOHOLD_DATABASE_URL": destination}
    after = ServerProcess(data, workdir / "destination.log", settings=settings)
    after.start()
    try:
        with httpx.Client(base_url=after.url, timeout=20.0) as client:
            # Before any pull here: the pulls recorded on SQLite, the same answer.
            listed = call(client, "GET", "/pulls")["pulls"]
            assert len(listed) == len(expected["pull_events"])
            assert all(pull in listed for pull in pulls)
            assert served(client, ALICE) == images
            assert served(client, ("ci", secret)).keys() >= {"acme/app:v1"}
            wrong = (ALICE[0], "wrong")
            refused = client.get("/token", params={"service": "cargohold"}, auth=wrong)
            assert refused.status_code == 401
            shown = call(client, "GET", "/advisories/CH-1")
            assert {d["via_tag"] for d in shown["digests"]} == {"v1", "v2"}
            # New rows take ids after the copied ones (sequences were moved on).
            call(client, "POST", "/users", {"name": "bob", "password": ALICE[1]}, 201)
            push_image_to(
                client, "acme/app", "v3", seed="new",
                headers=bearer(client, "repository:acme/app:pull,push", ALICE),
            )  # fmt: skip
    finally:
        after.stop()
    check_log(after, request)
    grown = rows_of(destination)
    assert len(grown["audit_events"]) > len(expected["audit_events"])
    assert len(grown["tag_history"]) == len(expected["tag_history"]) + 1


# -- interrupted runs ------------------------------------------------------------------


def test_an_interrupted_run_resumes_without_duplicates(
    source: str, destination: str
) -> None:
    with pytest.raises(Interrupted):
        MetadataTransfer(
            source, destination, batch_size=2, after_batch=stop_at("manifests", 2)
        ).run()
    assert has_progress_table(destination)

    with pytest.raises(DestinationInUse, match="--resume"):
        MetadataTransfer(source, destination, batch_size=2).run()

    result = MetadataTransfer(source, destination, batch_size=2, resume=True).run()
    assert result.resumed
    # Earlier tables and the first batch of manifests were not written again.
    assert 0 < result.copied < result.rows
    assert {t.name: t.copied for t in result.tables}["manifests"] == 2
    assert rows_of(destination) == rows_of(source)
    assert not has_progress_table(destination)


def test_a_source_changed_between_runs_is_copied_again(
    source: str, destination: str
) -> None:
    with pytest.raises(Interrupted):
        MetadataTransfer(
            source, destination, batch_size=2, after_batch=stop_at("manifests", 2)
        ).run()
    path = sa.engine.make_url(source).database or ""
    with sqlite3.connect(path) as conn:
        # blobs (done): one more row; manifest_references (done): same count, new
        # content; manifests (half done): one row changed.
        conn.execute(
            "INSERT INTO blobs (digest, size, created_at, touched_at, state) "
            "VALUES ('sha256:" + "a" * 64 + "', 5, 1.0, 1.0, 'present')"
        )
        conn.execute("UPDATE manifest_references SET kind = 'changed'")
        conn.execute("UPDATE manifests SET artifact_type = 'changed/type'")
    conn.close()

    result = MetadataTransfer(source, destination, resume=True).run()
    assert {t.name: t.copied for t in result.tables}["blobs"] == 9
    assert rows_of(destination) == rows_of(source)


def test_a_write_to_the_source_during_the_run_fails_it(
    source: str, destination: str
) -> None:
    path = sa.engine.make_url(source).database or ""

    def writer(name: str, _copied: int) -> None:
        if name == "manifests":  # blobs are copied by now
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO repositories (name, created_at) "
                    "VALUES ('written/meanwhile', 1.0)"
                )
            conn.close()

    with pytest.raises(VerificationFailed, match="written during the migration"):
        MetadataTransfer(source, destination, batch_size=2, after_batch=writer).run()
    # The copy is the snapshot taken at the start; the next run brings the rest.
    MetadataTransfer(source, destination, resume=True).run()
    copied = rows_of(destination)
    assert copied == rows_of(source)
    assert ("written/meanwhile", 1.0) in copied["repositories"]


def test_a_killed_run_resumes(source: str, tmp_path: Path) -> None:
    """``kill -9`` while the command waits on a row lock in the middle of a table."""
    with fresh_postgres_database() as destination:
        db = Database(destination)
        upgrade(db)
        asyncio.run(db.close())
        third = nth_manifest(source, 2)
        holder = sa.create_engine(destination)
        try:
            with holder.connect() as lock:
                lock.execute(
                    sa.insert(schema.manifests).values(third)
                )  # not committed: the command's upsert of this key must wait
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "cargohold",
                        "migrate-metadata",
                        "--from",
                        source,
                        "--to",
                        destination,
                        "--batch-size",
                        "2",
                    ],
                    env=clean_environ(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd=tmp_path,
                )
                try:
                    wait_until_blocked(holder, process)
                finally:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
                lock.rollback()
        finally:
            holder.dispose()
        assert has_progress_table(destination)
        assert len(rows_of(destination)["manifests"]) == 2

        again = run_cli(
            "migrate-metadata", "--from", source, "--to", destination, "--resume",
            data_dir=tmp_path / "unused",
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert rows_of(destination) == rows_of(source)


def nth_manifest(url: str, n: int) -> dict[str, Any]:
    """The ``n``-th manifest row in the order the command copies them (by key)."""
    table = schema.manifests
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.select(table).order_by(*table.primary_key.columns)
            return dict(conn.execute(query.offset(n).limit(1)).one()._mapping)
    finally:
        engine.dispose()


def wait_until_blocked(engine: sa.Engine, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the command ended instead of waiting"
            waiting = conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.05)
    pytest.fail("the command never reached the locked row")


# -- refusals and errors ---------------------------------------------------------------


def migrate(*args: str) -> Any:
    return CliRunner().invoke(main, ["migrate-metadata", *args])


def test_a_destination_with_data_is_refused_unless_resuming(
    source: str, destination: str
) -> None:
    assert migrate("--from", source, "--to", destination).exit_code == 0
    refused = migrate("--from", source, "--to", destination)
    assert refused.exit_code == 4
    assert "already holds data" in refused.stderr
    assert "--resume" in refused.stderr
    # A finished copy brought up to date: upserts, and a table with rows deleted from
    # the source since is emptied and copied again.
    path = sa.engine.make_url(source).database or ""
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM tags WHERE repository = 'migrate/app0'")
        conn.execute("UPDATE blobs SET touched_at = 2.0")
    conn.close()
    again = migrate("--from", source, "--to", destination, "--resume")
    assert again.exit_code == 0, again.output
    assert "verified" in again.stdout
    assert rows_of(destination) == rows_of(source)


@pytest.mark.parametrize(
    ("to", "code", "message"),
    [
        ("not a url", 2, "is not a database URL"),
        ("mysql://user@host/db", 2, "SQLite or PostgreSQL, not 'mysql'"),
        ("sqlite://", 2, "name a database file"),
        (
            "postgresql+psycopg://u:hunter2@127.0.0.1:{port}/db",
            3,
            "cannot connect to the destination postgresql+psycopg://u:***@",
        ),
    ],
)
def test_bad_destinations_are_explained(
    source: str, to: str, code: int, message: str
) -> None:
    result = migrate("--from", source, "--to", to.format(port=free_port()))
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output


def test_a_missing_or_identical_source_is_refused(source: str, tmp_path: Path) -> None:
    missing = migrate("--from", f"sqlite:///{tmp_path / 'none.db'}", "--to", source)
    assert missing.exit_code == 3
    assert "no SQLite database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    same = migrate("--from", source, "--to", source)
    assert same.exit_code == 2
    assert "the same database" in same.stderr


def test_a_destination_of_a_newer_cargohold_is_refused(
    source: str, destination: str
) -> None:
    engine = sa.create_engine(destination)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('9999')"))
    engine.dispose()
    result = migrate("--from", source, "--to", destination)
    assert result.exit_code == 3, result.output
    assert "Is it a database of a newer cargohold?" in result.stderr
