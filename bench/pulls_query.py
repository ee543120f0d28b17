"""How fast "who pulled digest D in the last 90 days" answers over 1,000,000 pulls.

Seeds a fresh SQLite database (the schema from the migrations) with N pull events
spread over 120 days, 10,000 digests and 5,000 identities, plus one popular digest
pulled 1% of the time; then times, through ``SqlPullStore``, the questions the API and
advisories ask: the pullers of a digest (grouped by identity) and the first API page of
its pulls. Prints a markdown table of medians. Not a test; about 30 s for 1M events.

    PYTHONPATH=src .venv/bin/python bench/pulls_query.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.pulls import DAY, PullFilter
from cargohold.metadata.sql_pulls import SqlPullStore

DIGESTS = 10_000
IDENTITIES = 5_000
SPAN_DAYS = 120
HOT_SHARE = 0.01
REPEATS = 20


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def seed(path: Path, events: int, now: float, rng: random.Random) -> None:
    """Insert ``events`` rows with one executemany per 100,000 (one transaction), the
    indexes dropped meanwhile and built again after (as a bulk load would)."""
    connection = sqlite3.connect(path)
    indexes = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = 'pull_events' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        connection.execute(f"DROP INDEX {name}")
    sql = (
        "INSERT INTO pull_events (at, identity, kind, organization, repository, "
        "reference, digest, method, client, user_agent, tool, tool_version, platform) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    batch = 100_000
    with connection:
        for start in range(0, events, batch):
            rows = []
            for _ in range(min(batch, events - start)):
                n = 0 if rng.random() < HOT_SHARE else rng.randrange(1, DIGESTS)
                who = rng.randrange(IDENTITIES)
                rows.append((
                    now - rng.random() * SPAN_DAYS * DAY, f"user:u{who}", "user",
                    "acme", f"acme/app{n % 50}", "latest", digest(n), "GET",
                    f"10.0.{who % 250}.{who % 200}", "docker/24.0.7", "docker",
                    "24.0.7", "linux/amd64",
                ))  # fmt: skip
            connection.executemany(sql, rows)
        for _, create in indexes:
            connection.execute(create)
    connection.execute("ANALYZE")
    connection.close()


async def timed(what: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    samples = []
    result: object = None
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = await what()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


async def measure(events: int) -> list[str]:
    rng = random.Random(7)
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="cargohold-pulls-") as tmp:
        path = Path(tmp) / "pulls.db"
        db = Database(f"sqlite:///{path}")
        upgrade(db)
        started = time.perf_counter()
        seed(path, events, now, rng)
        seeded = time.perf_counter() - started
        store = SqlPullStore(db)
        since = now - 90 * DAY
        lines = [
            f"{events:,} events seeded in {seeded:.1f} s; medians of {REPEATS} runs.",
            "",
            "| question | digest | rows | ms |",
            "|---|---|---:|---:|",
        ]
        for label, n in (("typical", 4242), ("popular (1% of pulls)", 0)):
            ms, found = await timed(lambda n=n: store.pullers(digest(n), since=since))
            rows = len(found)  # type: ignore[arg-type]
            lines.append(f"| pullers in 90 days (by identity) | {label} | {rows} | "
                         f"{ms:.2f} |")  # fmt: skip
            ms, page = await timed(
                lambda n=n: store.query(
                    PullFilter(digest=digest(n), since=since), limit=100
                )
            )
            lines.append(f"| first API page (100) | {label} | {len(page)} | "  # type: ignore[arg-type]
                         f"{ms:.2f} |")  # fmt: skip
        await db.close()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.stdout.write("\n".join(asyncio.run(measure(args.events))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
