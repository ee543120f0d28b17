"""The ``SignatureStore`` contract (``cargohold.metadata.signatures``), on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.outbox import SIGN, OutboxMessage
from cargohold.metadata.signatures import SignatureStore
from cargohold.metadata.sql_signatures import SqlSignatureStore

NOW = 1_700_000_000.5
REPO = "acme/app"
OCI = "application/vnd.oci.image.manifest.v1+json"


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


IMAGE, OTHER, SIG_MANIFEST, REFERRER = (
    digest_of(n) for n in ("image", "other", "sig", "referrer")
)


@pytest.fixture
def store(db: Database) -> SignatureStore:
    # The typed assignment is the conformance check (mypy runs on tests/).
    signatures: SignatureStore = SqlSignatureStore(db)
    return signatures


@pytest.fixture
def seeded(db: Database) -> Database:
    """A repository with an image, another one, a cosign .sig manifest, a referrer."""

    def write(conn: sa.Connection) -> None:
        conn.execute(sa.insert(t.repositories).values(name=REPO, created_at=NOW))
        for digest, subject in (
            (IMAGE, None),
            (OTHER, None),
            (SIG_MANIFEST, None),
            (REFERRER, IMAGE),
        ):
            conn.execute(
                sa.insert(t.manifests).values(
                    repository=REPO,
                    digest=digest,
                    media_type=OCI,
                    content=digest.encode(),
                    subject=subject,
                    created_at=NOW,
                )
            )
        for name, digest in (
            ("v1", IMAGE),
            ("latest", IMAGE),
            (f"sha256-{IMAGE[7:]}.sig", SIG_MANIFEST),
        ):
            conn.execute(
                sa.insert(t.tags).values(
                    repository=REPO, name=name, digest=digest, updated_at=NOW
                )
            )

    db.run_sync(write)
    return db


async def test_add_stores_once_per_content_and_lists_in_order(
    store: SignatureStore,
) -> None:
    assert await store.add(
        REPO, IMAGE, b"first", key_id="FPR1", created_by="registry", now=NOW
    )
    assert not await store.add(
        REPO, IMAGE, b"first", key_id="FPR1", created_by="registry", now=NOW + 1
    )
    assert await store.add(
        REPO, IMAGE, b"second", key_id=None, created_by="alice", now=NOW + 2
    )
    found = await store.for_manifest(REPO, IMAGE)
    assert [(s.content, s.key_id, s.created_by) for s in found] == [
        (b"first", "FPR1", "registry"),
        (b"second", None, "alice"),
    ]
    assert found[0].content_digest == "sha256:" + hashlib.sha256(b"first").hexdigest()
    assert found[0].created_at == NOW
    assert found[0].id < found[1].id


async def test_the_same_signature_may_sit_on_other_manifests_and_repositories(
    store: SignatureStore,
) -> None:
    for repo, digest in ((REPO, IMAGE), (REPO, OTHER), ("acme/copy", IMAGE)):
        assert await store.add(
            repo, digest, b"sig", key_id=None, created_by="bob", now=NOW
        )
    assert len(await store.for_manifest("acme/copy", IMAGE)) == 1
    assert await store.for_manifest("acme/none", IMAGE) == []


async def test_signed_by_names_the_registry_key(store: SignatureStore) -> None:
    await store.add(REPO, IMAGE, b"a", key_id="FPR1", created_by="registry", now=NOW)
    await store.add(REPO, IMAGE, b"b", key_id=None, created_by="alice", now=NOW)
    assert await store.signed_by(REPO, IMAGE, "FPR1")
    assert not await store.signed_by(REPO, IMAGE, "FPR2")
    assert not await store.signed_by(REPO, OTHER, "FPR1")
    assert not await store.signed_by("acme/other", IMAGE, "FPR1")


@pytest.mark.usefixtures("seeded")
async def test_manifest_and_manifests_read_what_signing_needs(
    store: SignatureStore,
) -> None:
    one = await store.manifest(REPO, REFERRER)
    assert one is not None
    assert (one.digest, one.media_type, one.content, one.subject) == (
        REFERRER,
        OCI,
        REFERRER.encode(),
        IMAGE,
    )
    assert await store.manifest(REPO, digest_of("missing")) is None
    assert await store.manifest("acme/other", IMAGE) is None

    every = {m.digest: m for m in await store.manifests(REPO)}
    assert set(every) == {IMAGE, OTHER, SIG_MANIFEST, REFERRER}
    assert every[IMAGE].tags == ("latest", "v1")
    assert every[SIG_MANIFEST].tags == (f"sha256-{IMAGE[7:]}.sig",)
    assert every[OTHER].tags == ()
    assert await store.manifests("acme/none") == []


async def test_queue_enqueues_new_keys_only_and_counts_by_state(
    store: SignatureStore, db: Database
) -> None:
    messages = [
        OutboxMessage(f"sign:{REPO}@{d}:K1", SIGN, {"repository": REPO, "digest": d})
        for d in (IMAGE, OTHER)
    ]
    assert await store.queue(messages, now=NOW) == 2
    assert await store.queue(messages, now=NOW + 1) == 0
    assert await store.queue([], now=NOW) == 0
    assert await store.queue_counts(SIGN) == {"pending": 2}
    assert await store.queue_counts("describe") == {}

    def finish_one(conn: sa.Connection) -> None:
        conn.execute(
            sa.update(t.outbox)
            .where(t.outbox.c.key == messages[0].key)
            .values(state="done")
        )

    db.run_sync(finish_one)
    assert await store.queue_counts(SIGN) == {"pending": 1, "done": 1}
