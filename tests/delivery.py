"""Test helpers for the outbox and inbox: rows as the fan-out writes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.outbox import EMAIL, OutboxMessage, enqueue_in

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cargohold.metadata.database import Database

DIGEST = "sha256:" + "a" * 64


def notice_document(advisory: str) -> dict[str, Any]:
    return {
        "advisory": advisory,
        "title": f"{advisory} title",
        "severity": "high",
        "state": "current",
        "digests": [DIGEST],
        "fixed_in": "acme/app:2",
    }


def add_notice(db: Database, identity: str, advisory: str, *, at: float) -> int:
    """Insert one inbox notice; returns its id."""
    query = sa.insert(t.notices).values(
        identity=identity,
        advisory=advisory,
        revision=1,
        document=json.dumps(notice_document(advisory)),
        created_at=at,
    )

    def run(conn: sa.Connection) -> int:
        key = conn.execute(query).inserted_primary_key
        assert key is not None
        return int(key[0])

    return db.run_sync(run)


def email_message(
    to: str, *, advisory: str = "ADV-1", revision: int = 1
) -> OutboxMessage:
    """An ``email`` outbox message as the fan-out enqueues it."""
    document = notice_document(advisory) | {
        "url": f"https://example.com/{advisory}",
        "description": "Upgrade to 2.",
    }
    payload = {
        "to": to,
        "advisory": advisory,
        "revision": revision,
        "document": document,
        "images": [
            {
                "identity": "user:alice",
                "repository": "acme/app",
                "digest": DIGEST,
                "last_pull": 1_700_000_000.0,
            }
        ],
    }
    return OutboxMessage(f"email:{advisory}:{revision}:{to}", EMAIL, payload)


def enqueue_emails(db: Database, addresses: list[str], *, now: float) -> None:
    messages = [email_message(address) for address in addresses]
    db.run_sync(lambda conn: enqueue_in(conn, messages, now=now))


@dataclass(frozen=True, slots=True)
class Pullers:
    """Who ``seed_pullers`` made pull a digest, and how each is reached."""

    identities: tuple[str, ...]
    organizations: tuple[str, ...]
    addresses: tuple[str, ...]  # one per user, then one contact per organization

    def repositories(self) -> list[str]:
        return [f"{org}/app" for org in self.organizations]


def contact_of(organization: str) -> str:
    return f"security@{organization}.example"


def seed_pullers(
    db: Database,
    digest: str,
    *,
    users: int,
    tokens: int,
    organizations: Sequence[str],
    now: float,
) -> Pullers:
    """Organizations (each with a security contact), users with an email address, and
    one ``pull_daily`` row per user and per pull token for ``digest`` in
    ``<org>/app``, the identities spread over the organizations. In bulk, as SQL: the
    users cannot log in (their password hash is not one)."""
    day = int(now // 86_400)
    orgs = list(organizations)

    def org(n: int) -> str:
        return orgs[n % len(orgs)]

    def pulled(identity: str, kind: str, n: int) -> dict[str, Any]:
        return {
            "day": day,
            "identity": identity,
            "repository": f"{org(n)}/app",
            "digest": digest,
            "kind": kind,
            "organization": org(n),
            "count": 1,
            "last_at": now - n,
        }

    names = [f"puller{n:05d}" for n in range(users)]
    user_rows = [
        {
            "name": name,
            "password_hash": "!seeded",
            "is_admin": False,
            "disabled": False,
            "created_at": now,
            "email": f"{name}@example.com",
        }
        for name in names
    ]
    org_rows = [
        {"name": name, "created_at": now, "security_contact": contact_of(name)}
        for name in orgs
    ]
    pulls = [pulled(f"user:{name}", "user", n) for n, name in enumerate(names)]
    pulls += [pulled(f"token:seeded{n:05d}", "token", n) for n in range(tokens)]

    def run(conn: sa.Connection) -> None:
        conn.execute(sa.insert(t.organizations), org_rows)
        for start in range(0, max(len(user_rows), len(pulls)), 5000):
            if user_rows[start : start + 5000]:
                conn.execute(sa.insert(t.users), user_rows[start : start + 5000])
            if pulls[start : start + 5000]:
                conn.execute(sa.insert(t.pull_daily), pulls[start : start + 5000])

    db.run_sync(run)
    contacts = sorted({contact_of(org(n)) for n in range(tokens)})
    return Pullers(
        identities=tuple(p["identity"] for p in pulls),
        organizations=tuple(orgs),
        addresses=tuple(f"{name}@example.com" for name in names) + tuple(contacts),
    )


def notices_per_identity(db: Database, advisory: str) -> dict[str, int]:
    n = t.notices
    query = (
        sa.select(n.c.identity, sa.func.count())
        .where(n.c.advisory == advisory)
        .group_by(n.c.identity)
    )
    return {
        str(identity): int(count)
        for identity, count in db.run_sync(lambda conn: conn.execute(query).all())
    }
