"""The outbox in real servers: ``cargohold serve --workers 2`` delivering email to a
real SMTP server (``aiosmtpd`` on loopback), dead letters through the API and CLI,
the inbox through the CLI, and a ``kill -9`` mid-delivery.

Outbox rows are enqueued straight into the server's database with
``metadata/outbox.enqueue_in``, as the advisories' fan-out does in its transaction.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

import httpx
import pytest
import sqlalchemy as sa
import structlog
from click.testing import CliRunner, Result
from standardwebhooks import Webhook

from cargohold.cli import main
from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.registry.email import message_id
from tests.contract.conftest import POSTGRES_URL, POSTGRES_URL_VARIABLE, reset
from tests.delivery import (
    DIGEST,
    add_notice,
    contact_of,
    enqueue_emails,
    notices_per_identity,
    seed_pullers,
)
from tests.integration.serverproc import ServerProcess, check_log
from tests.prerequisites import skip_or_fail
from tests.smtp import SmtpServer
from tests.webhook_receiver import Receiver
from tests.webhook_receiver import serve as serve_webhooks

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

ROOT_PASSWORD = "root-password-123"  # noqa: S105 - test accounts
ALICE_PASSWORD = "alice-password-1"  # noqa: S105
SENDER = "registry@cargohold.example"
WAIT = 60.0


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI's local backend points structlog at the runner's stderr; undo that."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """The server's database, migrated before it starts (the server finds it so).

    The embedded SQLite in the data directory, or the throwaway PostgreSQL database
    of the contract tier (emptied first).
    """
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


def make_server(
    tmp_path: Path,
    smtp: SmtpServer,
    database: Database,
    *,
    workers: int = 2,
    **settings: str,
) -> ServerProcess:
    if not database.is_sqlite:
        settings = {"CARGOHOLD_DATABASE_URL": database.url} | settings
    return ServerProcess(
        tmp_path / "data",
        tmp_path / "server.log",
        settings={
            "CARGOHOLD_AUTH_MODE": "token",
            "CARGOHOLD_ADMIN_USER": "root",
            "CARGOHOLD_ADMIN_PASSWORD": ROOT_PASSWORD,
            "CARGOHOLD_SERVER_WORKERS": str(workers),
            "CARGOHOLD_SMTP_HOST": "127.0.0.1",
            "CARGOHOLD_SMTP_PORT": str(smtp.port),
            "CARGOHOLD_SMTP_SECURITY": "none",
            "CARGOHOLD_SMTP_SENDER": SENDER,
            "CARGOHOLD_OUTBOX_POLL_INTERVAL_SECONDS": "0.1",
            "CARGOHOLD_OUTBOX_BASE_DELAY_SECONDS": "0.5",
        }
        | settings,
    )


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Iterator[list[ServerProcess]]:
    """Servers a test starts; stopped after, their logs checked for errors."""
    started: list[ServerProcess] = []
    yield started
    for process in started:
        process.stop()
    for process in started:
        check_log(process, request)


def states(db: Database) -> dict[str, tuple[int, str, int, str | None]]:
    """Per recipient: (id, state, attempts, last_error)."""
    o = t.outbox
    query = sa.select(o.c.id, o.c.key, o.c.state, o.c.attempts, o.c.last_error)
    return {
        row.key.rpartition(":")[2]: (row.id, row.state, row.attempts, row.last_error)
        for row in db.run_sync(lambda conn: conn.execute(query).all())
    }


def wait_for(what: str, check: Callable[[], bool], *, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def settled(db: Database, count: int) -> Callable[[], bool]:
    def check() -> bool:
        found = states(db)
        return len(found) == count and all(
            s != "pending" for _, s, _, _ in found.values()
        )

    return check


def cli(
    *args: str, server: ServerProcess, user: str = "root", password: str = ROOT_PASSWORD
) -> Result:
    env = {"CARGOHOLD_PASSWORD": password}
    remote = ("--registry", server.url, "--username", user)
    return CliRunner().invoke(main, [*args, *remote], env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def addresses(count: int) -> list[str]:
    return [f"puller{n}@example.com" for n in range(count)]


def test_two_workers_deliver_each_message_once(
    tmp_path: Path,
    smtp: SmtpServer,
    database: Database,
    servers: list[ServerProcess],
) -> None:
    recipients = addresses(300)
    enqueue_emails(database, recipients, now=time.time())
    server = make_server(tmp_path, smtp, database, workers=2)
    servers.append(server)
    server.start()
    wait_for("every message settled", settled(database, len(recipients)))
    assert {s for _, s, _, _ in states(database).values()} == {"done"}
    received = Counter(str(m["To"]) for m in smtp.messages)
    assert received == Counter(recipients)  # each exactly once
    ids = {str(m["Message-ID"]) for m in smtp.messages}
    assert len(ids) == len(recipients)
    # Both worker processes delivered: the rows' leases were split between them.
    assert smtp.handler.sessions >= 2


def test_temporary_and_permanent_refusals_dead_letters_and_retry(
    tmp_path: Path,
    smtp: SmtpServer,
    database: Database,
    servers: list[ServerProcess],
) -> None:
    smtp.handler.temporary_failures = 2
    smtp.handler.refused_recipients.add("gone@example.com")
    enqueue_emails(database, ["bob@example.com", "gone@example.com"], now=time.time())
    server = make_server(tmp_path, smtp, database, workers=1)
    servers.append(server)
    server.start()
    wait_for("both messages settled", settled(database, 2))
    found = states(database)
    assert found["bob@example.com"][1:3] == ("done", 3)  # refused twice, then sent
    dead_id, state, attempts, error = found["gone@example.com"]
    assert (state, attempts) == ("dead", 1)
    assert "550" in (error or "")
    assert [str(m["To"]) for m in smtp.messages] == ["bob@example.com"]

    listed = json.loads(
        ok(cli("outbox", "list", "--state", "dead", "--json", server=server))
    )
    [dead] = listed["messages"]
    assert dead["id"] == dead_id
    assert dead["key"] == "email:ADV-1:1:gone@example.com"
    assert dead["channel"] == "email"
    assert "550" in dead["last_error"]
    table = ok(cli("outbox", "list", server=server))
    assert "gone@example.com" in table
    assert "dead" in table

    # Not for non-admins: a user sees 403.
    ok(_add_alice(server))
    refused = cli(
        "outbox", "list", server=server, user="alice", password=ALICE_PASSWORD
    )
    assert refused.exit_code == 1
    assert "403" in refused.stderr

    smtp.handler.refused_recipients.clear()
    assert ok(cli("outbox", "retry", str(dead_id), server=server)) == (
        f"message {dead_id} is pending again\n"
    )
    wait_for("the retried message delivered", lambda: len(smtp.messages) == 2)
    wait_for(
        "the retried message done",
        lambda: states(database)["gone@example.com"][1] == "done",
    )
    again = cli("outbox", "retry", str(dead_id), server=server)
    assert again.exit_code == 1
    assert "404" in again.stderr


def _add_alice(server: ServerProcess) -> Result:
    runner = CliRunner()
    return runner.invoke(
        main,
        ["users", "add", "alice", "--registry", server.url, "--username", "root"],
        env={
            "CARGOHOLD_PASSWORD": ROOT_PASSWORD,
            "CARGOHOLD_NEW_PASSWORD": ALICE_PASSWORD,
        },
    )


def test_the_inbox_through_the_cli(
    tmp_path: Path,
    smtp: SmtpServer,
    database: Database,
    servers: list[ServerProcess],
) -> None:
    server = make_server(tmp_path, smtp, database, workers=1)
    servers.append(server)
    server.start()
    ok(_add_alice(server))
    first = add_notice(database, "user:alice", "ADV-1", at=time.time() - 60)
    second = add_notice(database, "user:alice", "ADV-2", at=time.time())
    roots = add_notice(database, "user:root", "ADV-1", at=time.time())

    def as_alice(*args: str) -> Result:
        return cli(*args, server=server, user="alice", password=ALICE_PASSWORD)

    listed = json.loads(ok(as_alice("notices", "--json")))["notices"]
    assert [n["id"] for n in listed] == [second, first]
    assert listed[1] | {"created_at": None} == {
        "id": first,
        "advisory": "ADV-1",
        "revision": 1,
        "title": "ADV-1 title",
        "severity": "high",
        "state": "current",
        "digests": ["sha256:" + "a" * 64],
        "fixed_in": "acme/app:2",
        "read": False,
        "created_at": None,
    }
    table = ok(as_alice("notices"))
    assert "ADV-2 title" in table
    assert ok(as_alice("notices", "read", str(first))) == "marked 1 notice(s) read\n"
    other = as_alice("notices", "read", str(roots))
    assert other.exit_code == 1
    assert "404" in other.stderr
    unread = json.loads(ok(as_alice("notices", "--unread", "--json")))["notices"]
    assert [n["id"] for n in unread] == [second]
    assert ok(as_alice("notices", "read", "--all")) == "marked 1 notice(s) read\n"
    assert ok(as_alice("notices", "--unread")) == "(none)\n"
    usage = as_alice("notices", "read")
    assert usage.exit_code == 2
    assert (
        len(
            json.loads(ok(cli("notices", "--unread", "--json", server=server)))[
                "notices"
            ]
        )
        == 1
    )


def test_kill_during_delivery_loses_nothing(
    tmp_path: Path,
    smtp: SmtpServer,
    database: Database,
    servers: list[ServerProcess],
) -> None:
    recipients = addresses(20)
    enqueue_emails(database, recipients, now=time.time())
    hold = threading.Event()
    smtp.handler.hold = hold
    settings = {
        # One connection: while the first message is held in DATA, nothing else goes.
        "CARGOHOLD_SMTP_CONNECTIONS": "1",
        "CARGOHOLD_OUTBOX_LEASE_SECONDS": "2",
    }
    server = make_server(tmp_path, smtp, database, workers=1, **settings)
    servers.append(server)
    server.start()
    wait_for("a message in DATA", smtp.handler.held.is_set)
    server.kill()
    assert smtp.messages == []
    # The message held in DATA was never answered: aiosmtpd drops it with the
    # connection, as a real server drops a message whose DATA it has not accepted.
    smtp.handler.hold = None
    hold.set()
    assert {s for _, s, _, _ in states(database).values()} == {"pending"}

    server.start()  # its leases run out after 2 s; then it takes the rows again
    wait_for("every message settled", settled(database, len(recipients)))
    assert {s for _, s, _, _ in states(database).values()} == {"done"}
    received = Counter(str(m["To"]) for m in smtp.messages)
    assert set(received) == set(recipients)  # nothing lost
    duplicates = [to for to, n in received.items() if n > 1]
    assert len(duplicates) <= 1  # only the message that was in DATA at the kill
    for to in duplicates:
        copies = {str(m["Message-ID"]) for m in smtp.messages if m["To"] == to}
        assert copies == {message_id(f"email:ADV-1:1:{to}", SENDER)}


def test_graceful_stop_hands_its_leases_back(
    tmp_path: Path,
    smtp: SmtpServer,
    database: Database,
    servers: list[ServerProcess],
) -> None:
    """SIGTERM mid-delivery: the rows the stopping worker held are free at once, so
    the next server delivers them without waiting out the (long) leases."""
    recipients = addresses(5)
    enqueue_emails(database, recipients, now=time.time())
    hold = threading.Event()
    smtp.handler.hold = hold
    settings = {
        "CARGOHOLD_SMTP_CONNECTIONS": "1",
        # Far longer than this test waits: only a released lease lets it finish.
        "CARGOHOLD_OUTBOX_LEASE_SECONDS": "3600",
    }
    server = make_server(tmp_path, smtp, database, workers=1, **settings)
    servers.append(server)
    server.start()
    wait_for("a message in DATA", smtp.handler.held.is_set)
    code, _ = server.terminate()
    assert code == 0
    smtp.handler.hold = None
    hold.set()
    o = t.outbox
    leases = database.run_sync(
        lambda conn: conn.execute(
            sa.select(o.c.state, o.c.holder, o.c.lease_until)
        ).all()
    )
    assert {tuple(row) for row in leases} <= {("pending", "", 0.0), ("done", "", 0.0)}
    server.start()
    wait_for("every message settled", settled(database, len(recipients)))
    assert {str(m["To"]) for m in smtp.messages} == set(recipients)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve_webhooks()


def test_kill_during_an_advisory_fan_out_loses_and_duplicates_nothing(
    tmp_path: Path,
    smtp: SmtpServer,
    receiver: Receiver,
    database: Database,
    servers: list[ServerProcess],
) -> None:
    """An advisory affecting 90 identities in 3 organizations, published through the
    API; the server is killed (-9) while the SMTP server holds a message in ``DATA``.

    After a restart every address has its email, every identity one notice, and the
    registry-wide webhook one event per organization; a duplicate (only what was in
    flight at the kill) carries the same ``Message-ID`` / ``webhook-id``.
    """
    hold = threading.Event()
    smtp.handler.hold = hold
    server = make_server(
        tmp_path,
        smtp,
        database,
        workers=1,
        CARGOHOLD_SMTP_CONNECTIONS="1",
        CARGOHOLD_OUTBOX_LEASE_SECONDS="2",
        CARGOHOLD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS="true",
    )
    servers.append(server)
    server.start()  # creates the first administrator: the database has no user yet
    pullers = seed_pullers(
        database,
        DIGEST,
        users=60,
        tokens=30,
        organizations=["acme", "beta", "gamma"],
        now=time.time(),
    )
    root = ("root", ROOT_PASSWORD)
    api = f"{server.url}/api/v1"
    created = httpx.post(
        f"{api}/webhooks",
        json={"url": receiver.url, "events": ["advisory.published"]},
        auth=root,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    published = httpx.post(
        f"{api}/advisories",
        json={
            "id": "ADV-9",
            "title": "fan-out under fire",
            "severity": "critical",
            "state": "current",
            "affected": [
                {"repository": repository, "digests": [DIGEST]}
                for repository in pullers.repositories()
            ],
        },
        auth=root,
        timeout=30,
    )
    assert published.status_code == 201, published.text

    wait_for("a message in DATA", smtp.handler.held.is_set)
    server.kill()
    assert smtp.messages == []
    smtp.handler.hold = None
    hold.set()  # aiosmtpd drops the held message with its connection
    # The fan-out itself committed before the kill: one notice per identity.
    assert notices_per_identity(database, "ADV-9") == dict.fromkeys(
        pullers.identities, 1
    )

    server.start()
    expected = len(pullers.addresses) + 1 + len(pullers.organizations)
    wait_for("every message settled", settled(database, expected))
    assert {s for _, s, _, _ in states(database).values()} == {"done"}

    # Email: every address, once; a duplicate only of what was in flight, same id.
    received = Counter(str(m["To"]) for m in smtp.messages)
    assert set(received) == set(pullers.addresses)
    duplicates = [to for to, n in received.items() if n > 1]
    assert len(duplicates) <= 1
    for to in duplicates:
        copies = {str(m["Message-ID"]) for m in smtp.messages if m["To"] == to}
        assert copies == {message_id(f"email:ADV-9:1:{to}", SENDER)}
    # The contact's message lists its organization's token pulls.
    [acme] = [m for m in smtp.messages if m["To"] == contact_of("acme")][:1]
    assert "token:seeded00000" in acme.get_content()

    # Inbox: still exactly one notice per identity (the fan-out is not repeated).
    assert notices_per_identity(database, "ADV-9") == dict.fromkeys(
        pullers.identities, 1
    )

    # Webhook: each event at least once, verified; any repeat with the same id.
    hook = Webhook(secret)
    ids_by_event: dict[str, set[str]] = {}
    for request in receiver.requests:
        event = hook.verify(request.body, request.headers)
        assert isinstance(event, dict)
        ids_by_event.setdefault(event["id"], set()).add(request.headers["webhook-id"])
    assert set(ids_by_event) == {
        f"advisory:ADV-9:1:{org}" for org in pullers.organizations
    }
    assert all(len(ids) == 1 for ids in ids_by_event.values())
    assert len(receiver.requests) <= len(ids_by_event) + 1
