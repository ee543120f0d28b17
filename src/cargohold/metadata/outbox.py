"""The persistent outbox's rows (table ``outbox`` in ``schema.py``).

A message is enqueued in the transaction that decides it (an advisory revision enqueues
its fan-out; the fan-out enqueues one email per recipient and the webhook deliveries),
so it exists if and only if that decision committed. ``key`` makes enqueuing
idempotent: a message whose key exists is not enqueued again, which is what lets a
killed fan-out or worker simply run again ("once per revision, identity and channel").

Channels and their payloads (JSON objects):

* ``fanout``  ``{"advisory": id, "revision": n}``, key ``fanout:<id>:<n>``.
* ``email``   ``{"to": address, "advisory": id, "revision": n, "document": {...},
  "images": [{"identity", "repository", "digest", "last_pull"}]}``,
  key ``email:<id>:<n>:<address>`` (one message per recipient).
* ``webhook`` ``{"webhook": id, "event": {...}}``, key ``webhook:<webhook id>:<event
  id>``; the same event retried keeps its ``webhook-id``.

Jobs on a pushed manifest (``registry/jobs.py`` decides them, and the manifest PUT
enqueues them in its own transaction, so a manifest stored is a manifest queued):

* ``sign``     ``{"repository", "digest"}``, key ``sign:<repository>@<digest>``
  (``resign`` adds ``:<key id>``): the registry's signatures in every format.
* ``describe`` ``{"repository", "digest"}``, key ``describe:<repository>@<digest>``:
  read the image's layers once per digest (a later push of the same digest elsewhere
  only gets its SBOM attestation); record its facts and packages.
* ``attest``   ``{"repository", "digest", "kind": "provenance", "actor", "at",
  "tag"}`` (enqueued by the push, key ``attest:provenance:<repository>@<digest>``)
  or ``{"repository", "digest", "kind": "sbom"}`` (enqueued when ``describe`` is
  done, key ``attest:sbom:<repository>@<digest>``): a signed in-toto attestation
  attached as a referrer and as the ``.att`` tag.
* ``match``    ``{"digest"}`` (enqueued when ``describe`` is done, key
  ``match:<digest>:<described_at>``): match the image's packages against the
  imported vulnerability feed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cargohold.metadata.schema import outbox

PENDING, DONE, DEAD = "pending", "done", "dead"
FANOUT, EMAIL, WEBHOOK = "fanout", "email", "webhook"
SIGN, DESCRIBE, ATTEST, MATCH = "sign", "describe", "attest", "match"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    key: str
    channel: str
    payload: Mapping[str, Any]


def enqueue_in(
    conn: sa.Connection, messages: Sequence[OutboxMessage], *, now: float
) -> None:
    """Insert ``messages`` in the caller's transaction; existing keys are skipped."""
    if not messages:
        return
    rows = [
        {
            "key": m.key,
            "channel": m.channel,
            "payload": json.dumps(m.payload, separators=(",", ":"), sort_keys=True),
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": 0.0,
            "holder": "",
            "last_error": None,
            "created_at": now,
            "updated_at": now,
        }
        for m in messages
    ]
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        insert = postgresql.insert(outbox).on_conflict_do_nothing(
            index_elements=["key"]
        )
    else:
        from sqlalchemy.dialects import sqlite  # noqa: PLC0415

        insert = sqlite.insert(outbox).on_conflict_do_nothing(index_elements=["key"])
    conn.execute(insert, rows)


def payload_of(row: Mapping[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(row["payload"])
    return loaded
