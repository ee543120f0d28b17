"""Advisory fan-out to N identities (default 10,000), end to end on a running server.

``cargohold serve`` (token auth, ``--workers`` 1 by default) over SQLite in a temporary
data directory, or ``--database URL`` (EMPTIED first: use a throwaway PostgreSQL). An
SMTP server (``aiosmtpd``) runs in its own process and counts what it accepts; a
webhook receiver on loopback takes the registry-wide webhook's calls. Seeded in bulk
through SQL once the server runs: organizations with a security contact, users with an
email address, and a ``pull_daily`` row per identity for one digest (90 % users, 10 %
pull tokens). Then one advisory on that digest is published through the API, and the
clock runs until every identity has its inbox notice, the SMTP server has received
every email, the webhook every organization's event, and the outbox holds nothing
pending for that revision. Target (issue #7): within 60 s.

    .venv/bin/python bench/advisory_fanout.py [--identities N] [--database URL]
        [--workers N] [--connections N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fanout import reset_schema
from servers import wait_for_port
from tests.delivery import notices_per_identity, seed_pullers
from tests.integration.serverproc import ServerProcess, free_port
from tests.webhook_receiver import serve

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade

ADVISORY = "BENCH-1"
DIGEST = "sha256:" + "b" * 64
ROOT_PASSWORD = "bench-root-password"  # noqa: S105 - a throwaway server
ORGANIZATIONS = [f"org{n:02d}" for n in range(10)]
TIMEOUT = 300.0

# The SMTP server's process: accept everything, one line per message in a file.
SMTP_COUNTER = textwrap.dedent(
    """
    import sys, time
    from aiosmtpd.controller import Controller

    class Count:
        def __init__(self, path):
            self.out = open(path, "a", buffering=1)
        async def handle_DATA(self, server, session, envelope):
            self.out.write(envelope.rcpt_tos[0] + "\\n")
            return "250 OK"

    controller = Controller(Count(sys.argv[2]), hostname="127.0.0.1",
                            port=int(sys.argv[1]))
    controller.start()
    while True:
        time.sleep(3600)
    """
)


def _pending(db: Database) -> int:
    o = t.outbox
    query = (
        sa.select(sa.func.count())
        .select_from(o)
        .where(o.c.state != "done", o.c.key.like(f"%:{ADVISORY}:1%"))
    )
    return int(db.run_sync(lambda conn: conn.execute(query).scalar_one()))


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def run(args: argparse.Namespace, tmp: Path) -> None:  # noqa: PLR0915 - one measurement, in order
    data = tmp / "data"
    data.mkdir()
    url = args.database or f"sqlite:///{data / 'cargohold.db'}"
    db = Database(url)
    if not db.is_sqlite:
        reset_schema(db)
    upgrade(db)
    port, received = free_port(), tmp / "received.txt"
    smtp = subprocess.Popen(
        [sys.executable, "-c", SMTP_COUNTER, str(port), str(received)]
    )
    receivers = serve()
    receiver = next(receivers)
    server = ServerProcess(
        data,
        tmp / "server.log",
        settings={
            "CARGOHOLD_DATABASE_URL": url,
            "CARGOHOLD_AUTH_MODE": "token",
            "CARGOHOLD_ADMIN_USER": "root",
            "CARGOHOLD_ADMIN_PASSWORD": ROOT_PASSWORD,
            "CARGOHOLD_SERVER_WORKERS": str(args.workers),
            "CARGOHOLD_LOG_ACCESS": "false",
            "CARGOHOLD_LOG_LEVEL": "warning",
            "CARGOHOLD_SMTP_HOST": "127.0.0.1",
            "CARGOHOLD_SMTP_PORT": str(port),
            "CARGOHOLD_SMTP_SECURITY": "none",
            "CARGOHOLD_SMTP_CONNECTIONS": str(args.connections),
            "CARGOHOLD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
            "CARGOHOLD_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        },
    )
    try:
        wait_for_port(port, "the SMTP server")
        server.start(timeout=60)
        users = args.identities - args.identities // 10
        pullers = seed_pullers(
            db,
            DIGEST,
            users=users,
            tokens=args.identities - users,
            organizations=ORGANIZATIONS,
            now=time.time(),
        )
        emails = len(pullers.addresses)
        api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=60)
        token = httpx.get(
            f"{server.url}/token",
            params={"service": "cargohold"},
            auth=("root", ROOT_PASSWORD),
            timeout=60,
        ).json()["token"]
        api.headers["Authorization"] = f"Bearer {token}"
        hook = api.post(
            "/webhooks",
            json={"url": receiver.url, "events": ["advisory.published"]},
        )
        hook.raise_for_status()
        document = {
            "id": ADVISORY,
            "title": "bench",
            "severity": "high",
            "state": "current",
            "affected": [
                {"repository": repository, "digests": [DIGEST]}
                for repository in pullers.repositories()
            ],
        }
        marks: dict[str, float] = {}
        started = time.perf_counter()
        api.post("/advisories", json=document).raise_for_status()
        published = time.perf_counter() - started
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and len(marks) < 4:
            now = time.perf_counter() - started
            if "notices" not in marks and sum(
                notices_per_identity(db, ADVISORY).values()
            ) >= len(pullers.identities):
                marks["notices"] = now
            if "emails" not in marks and _lines(received) >= emails:
                marks["emails"] = now
            if "webhooks" not in marks and len(receiver.requests) >= len(ORGANIZATIONS):
                marks["webhooks"] = now
            if len(marks) == 3 and _pending(db) == 0:
                marks["settled"] = now
            if server.proc is not None and server.proc.poll() is not None:
                raise SystemExit(f"the server died\n{server.log_tail()}")
            time.sleep(0.1)
        api.close()
        print(f"database: {db.dialect}; server workers {args.workers}; "
              f"SMTP connections {args.connections}")  # fmt: skip
        print(
            f"identities: {len(pullers.identities)} ({users} users, "
            f"{len(pullers.identities) - users} pull tokens) in "
            f"{len(ORGANIZATIONS)} organizations; {emails} emails"
        )
        print(f"publish (POST, enqueues the fan-out): {published:.2f} s")
        for what in ("notices", "emails", "webhooks", "settled"):
            at = marks.get(what)
            print(f"  {what:9s} {'not reached' if at is None else f'{at:6.1f} s'}")
        total = marks.get("settled")
        verdict = "PASS" if total is not None and total <= 60 else "MISS"
        shown = "not reached" if total is None else f"{total:.1f} s"
        print(f"fan-out to {len(pullers.identities)} identities, end to end: "
              f"{shown} (target 60 s: {verdict})")  # fmt: skip
        print(f"received: {_lines(received)} emails, "
              f"{len(receiver.requests)} webhook calls")  # fmt: skip
    finally:
        server.stop()
        with contextlib.suppress(StopIteration):
            next(receivers)
        smtp.terminate()
        smtp.wait(timeout=10)
        asyncio.run(db.close())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=10_000)
    parser.add_argument("--database", help="a THROWAWAY database URL (emptied)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
