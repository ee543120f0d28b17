"""Server-side render time of the web catalog's home page over 10,000 repositories.

Seeds a fresh SQLite database straight through the metadata tables (10,000
repositories in 100 organizations, every third one public, the rest private), then
renders ``/`` and ``/?q=…`` in-process (the ASGI app, no network: the time is the
server's) as an anonymous visitor and as a signed-in member of ten organizations.
Prints the median and p95 over rounds.

    python bench/catalog.py [--repositories 10000] [--rounds 30] [--database-url URL]

``--database-url``: an empty PostgreSQL database instead (it is migrated and filled).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from cargohold.api.app import create_app, open_services
from cargohold.auth.policy import Principal
from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.registry.bootstrap import bootstrap
from cargohold.settings import AdminSettings, load

ROOT = Principal("user", "user:root", is_admin=True)
ORGS = 100
MEMBER_OF = 10


async def seed(url: str, count: int, *, public_every: int) -> None:
    db = Database(url)
    now = time.time()
    repos = [
        {"name": f"org{n % ORGS:03d}/service-{n:05d}", "created_at": now}
        for n in range(count)
    ]
    settings = [
        {
            "repository": r["name"],
            "visibility": "public"
            if public_every and n % public_every == 0
            else "private",
            "starter_tags": json.dumps(["latest"]),
            "updated_at": now,
        }
        for n, r in enumerate(repos)
    ]

    def write(conn: sa.Connection) -> None:
        conn.execute(sa.insert(t.repositories), repos)
        conn.execute(sa.insert(t.repository_settings), settings)

    db.run_sync(write)
    await db.close()


async def measure(
    client: httpx.AsyncClient, path: str, rounds: int, cookies: dict[str, str]
) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(rounds + 2):
        start = time.perf_counter()
        response = await client.get(path, cookies=cookies)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
        size = len(response.content)
    times = sorted(times[2:])  # the first two warm caches up
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return statistics.median(times), p95, size


async def run(
    count: int, rounds: int, database_url: str | None, public_every: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, object] = {
            "data_dir": Path(tmp),
            "auth": {"mode": "token"},
        }
        if database_url:
            overrides["database"] = {"url": database_url}
        settings = load(None, {}, overrides)
        services = open_services(settings)
        await services.start()
        await bootstrap(services, AdminSettings(user="root", password="root-pass-1234"))  # noqa: S106
        await seed(settings.database_url, count, public_every=public_every)
        admin = services.auth.admin
        await admin.create_user(ROOT, "member", "member-pass-1234", client="bench")
        for org in range(MEMBER_OF):
            await admin.create_organization(ROOT, f"org{org:03d}", client="bench")
            await admin.set_member(
                ROOT, f"org{org:03d}", "member", "puller", client="bench"
            )
        session = await services.web_sessions.sign_in(
            "member", "member-pass-1234", client="bench"
        )
        app = create_app(settings, services=services)
        rows = []
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            for who, cookies in (
                ("anonymous", {}),
                ("member", {"cargohold_session": session.session_id}),
            ):
                for path in ("/", "/?q=service-0420", "/?q=org007/", "/?q=nothing"):
                    median, p95, size = await measure(client, path, rounds, cookies)
                    rows.append((who, path, median, p95, size))
        await services.close()
    where = settings.database_url.split(":", 1)[0]
    print(f"catalog home, {count} repositories on {where}, {rounds} rounds (ms)")
    print(f"{'viewer':<10} {'path':<20} {'median':>8} {'p95':>8} {'bytes':>8}")
    for who, path, median, p95, size in rows:
        print(f"{who:<10} {path:<20} {median:8.1f} {p95:8.1f} {size:8d}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url")
    parser.add_argument(
        "--public-every",
        type=int,
        default=3,
        help="every Nth repository is public (0: none, the anonymous worst case)",
    )
    args = parser.parse_args()
    asyncio.run(
        run(args.repositories, args.rounds, args.database_url, args.public_every)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
