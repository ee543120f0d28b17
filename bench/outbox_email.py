"""Benchmark the outbox's email channel: N messages to a local SMTP server (aiosmtpd).

The SMTP server runs in its own process (``python -m aiosmtpd``, a ``Sink`` handler):
in a thread of this one it would fight the outbox for the GIL and measure that. The
outbox runs in this process over SQLite (the embedded default, ``synchronous=FULL``)
or PostgreSQL (``--database URL``), with the default ``[outbox]`` and ``[smtp]``
settings but a loopback host. It reports the wall time for all messages to be
delivered and settled (target: 10,000 within 60 s), and the at-least-once window: for
each message, the time from the SMTP server's acceptance (``send_message`` returned)
to the commit that marks it done. A ``kill -9`` inside that window sends the message
again after a restart (with the same ``Message-ID``).

    python bench/outbox_email.py [--messages N] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servers import wait_for_port
from tests.delivery import enqueue_emails
from tests.smtp import free_port

from cargohold.metadata.database import Database
from cargohold.metadata.delivery import Outcome
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.outbox import EMAIL
from cargohold.metadata.sql_outbox import SqlOutboxStore
from cargohold.registry.email import EmailSender
from cargohold.registry.outbox import Outbox, OutboxItem
from cargohold.settings import OutboxSettings, SmtpSettings

CONNECTIONS = 8


class TimedStore(SqlOutboxStore):
    """Records when each outcome's commit finished."""

    def __init__(self, db: Database, accepted: dict[int, float]) -> None:
        super().__init__(db)
        self.accepted = accepted
        self.windows: list[float] = []

    async def settle(
        self, holder: str, outcomes: Sequence[Outcome], *, now: float
    ) -> int:
        applied = await super().settle(holder, outcomes, now=now)
        committed = time.perf_counter()
        self.windows += [
            committed - self.accepted[o.id] for o in outcomes if o.id in self.accepted
        ]
        return applied


async def run(count: int, url: str, port: int) -> None:
    db = Database(url)
    upgrade(db)
    enqueue_emails(
        db, [f"puller{n}@example.com" for n in range(count)], now=time.time()
    )
    accepted: dict[int, float] = {}
    store = TimedStore(db, accepted)
    sender = EmailSender(
        SmtpSettings(
            host="127.0.0.1", port=port, security="none", connections=CONNECTIONS
        )
    )

    async def deliver(item: OutboxItem) -> None:
        await sender.deliver(item)
        accepted[item.id] = time.perf_counter()

    outbox = Outbox(store, OutboxSettings())
    outbox.register(EMAIL, deliver)
    started = time.perf_counter()
    try:
        leased = await outbox.drain(until=time.time() + 300)
        elapsed = time.perf_counter() - started
    finally:
        await sender.close()
        await db.close()
    windows = sorted(store.windows)
    print(f"database: {url.split(':', 1)[0]}")
    print(f"messages: {count}, leased {leased}, SMTP connections {CONNECTIONS}")
    print(f"wall time: {elapsed:.1f} s ({count / elapsed:.0f} messages/s)")
    print(
        "accepted -> committed: "
        f"median {statistics.median(windows) * 1000:.1f} ms, "
        f"p99 {windows[int(len(windows) * 0.99) - 1] * 1000:.1f} ms, "
        f"max {windows[-1] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--database", help="a database URL (default: SQLite in /tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        port = free_port()
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-c",
                   "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"]  # fmt: skip
        smtp = subprocess.Popen(command)
        try:
            wait_for_port(port, "the SMTP server")
            asyncio.run(run(args.messages, url, port))
        finally:
            smtp.terminate()
            smtp.wait(timeout=10)


if __name__ == "__main__":
    main()
