"""The GC side of the ``MetadataStore`` contract (``GarbageIndex``, upload claims).

Runs on every database of the ``database_url`` fixture (SQLite always, PostgreSQL when
``CARGOHOLD_TEST_POSTGRES_URL`` is set). Cut-offs are chosen around ``time.time()``:
``LATER`` is after every touch a test makes, ``0.0`` before all of them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import sqlalchemy as sa

from cargohold.metadata.database import Database
from cargohold.metadata.migrate import upgrade
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.metadata.store import Reference, Tombstone
from cargohold.oci import mediatypes as mt

from .conftest import reset
from .helpers import new_upload_id
from .test_metadata_store import OTHER, REPO, digest_of, link_blob, manifest, push_image

if TYPE_CHECKING:
    from cargohold.metadata.store import MetadataStore


def later() -> float:
    return time.time() + 60


async def claimed(meta: MetadataStore, data: bytes, repository: str = REPO) -> str:
    """An upload session that claimed ``data`` and has not finished; its id."""
    upload_id = new_upload_id()
    await meta.uploads.create(upload_id, repository)
    assert await meta.uploads.claim(upload_id, digest_of(data), len(data)) is None
    return upload_id


async def test_a_claim_is_pending_until_finished(metadata_store: MetadataStore) -> None:
    meta = metadata_store
    upload_id = await claimed(meta, b"new")
    digest = digest_of(b"new")
    assert await meta.blobs.all_records() == {}  # not present: bytes not committed
    assert await meta.garbage.known() == {digest}
    assert await meta.blobs.link_existing(OTHER, digest) is None  # no mount of it yet
    assert await meta.garbage.unused_blobs(later()) == {}  # the session holds it
    assert await meta.garbage.mark_unused([digest], later(), time.time()) == []

    assert await meta.uploads.finish(upload_id, REPO, digest, 3)
    assert await meta.blobs.all_records() == {digest: 3}
    assert await meta.blobs.link_existing(OTHER, digest) == 3


async def test_an_abandoned_claim_is_collected_once_the_session_is_gone(
    metadata_store: MetadataStore,
) -> None:
    meta = metadata_store
    upload_id = await claimed(meta, b"abandoned")
    await meta.uploads.delete(upload_id)  # expired
    assert await meta.garbage.unused_blobs(0.0) == {}  # touched after the cut-off
    assert await meta.garbage.unused_blobs(later()) == {digest_of(b"abandoned"): 9}


async def test_a_tombstone_refuses_claims_mounts_and_finishes(
    metadata_store: MetadataStore,
) -> None:
    meta = metadata_store
    digest = await link_blob(meta, REPO, b"doomed")
    upload_id = await claimed(meta, b"doomed", OTHER)
    assert await meta.blobs.unlink(REPO, digest)
    assert await meta.garbage.mark_unused([digest], later(), 7.0) == []  # claimed
    await meta.uploads.delete(upload_id)
    [stone] = await meta.garbage.mark_unused([digest], later(), 7.0)
    assert stone == Tombstone(digest, 6, 7.0)

    late = new_upload_id()
    await meta.uploads.create(late, OTHER)
    assert await meta.uploads.claim(late, digest, 6) == stone
    assert not await meta.uploads.finish(late, OTHER, digest, 6)
    assert await meta.uploads.get(late) is not None  # nothing written
    assert await meta.blobs.link_existing(OTHER, digest) is None
    assert await meta.blobs.all_records() == {}


async def test_tombstone_leases_are_compare_and_set(
    metadata_store: MetadataStore,
) -> None:
    meta = metadata_store
    digest = await link_blob(meta, REPO, b"blob")
    await meta.blobs.unlink(REPO, digest)
    [stone] = await meta.garbage.mark_unused([digest], later(), 10.0)
    [mine] = await meta.garbage.take_over([stone], 20.0)
    assert mine == Tombstone(digest, 4, 20.0)
    assert await meta.garbage.take_over([stone], 30.0) == []  # lease moved on
    assert await meta.garbage.drop([stone]) == []  # the old owner cannot drop it
    assert await meta.garbage.tombstones() == [mine]
    assert await meta.garbage.drop([mine]) == [mine]
    assert await meta.garbage.known() == set()
    # Gone: a new claim starts afresh.
    assert await claimed(meta, b"blob")


async def test_unused_blobs_and_mark_unused(metadata_store: MetadataStore) -> None:
    meta = metadata_store
    linked = await link_blob(meta, REPO, b"linked")
    await push_image(meta, b"image")
    referenced = digest_of(b"layer:image")
    assert await meta.blobs.unlink(REPO, referenced)  # the manifest still needs it
    free = await link_blob(meta, OTHER, b"free")
    assert await meta.blobs.unlink(OTHER, free)

    assert await meta.garbage.unused_blobs(0.0) == {}  # all touched since
    assert await meta.garbage.unused_blobs(later()) == {free: 4}
    candidates = [linked, referenced, free, digest_of(b"unknown")]
    assert await meta.garbage.mark_unused(candidates, 0.0, 1.0) == []
    marked = await meta.garbage.mark_unused(candidates, later(), 1.0)
    assert marked == [Tombstone(free, 4, 1.0)]
    assert await meta.garbage.mark_unused([], later(), 1.0) == []


async def test_a_child_manifest_is_referenced(metadata_store: MetadataStore) -> None:
    meta = metadata_store
    child = await push_image(meta, b"child")
    await link_blob(meta, REPO, child.content)  # also pushed as a blob, say
    await meta.blobs.unlink(REPO, child.digest)
    index = manifest(b"index", media_type=mt.OCI_INDEX)
    refs = [Reference(child.digest, "manifest")]
    assert await meta.manifests.put(index, tag=None, references=refs) == []
    assert await meta.garbage.mark_unused([child.digest], later(), 1.0) == []


async def test_mark_orphans_only_where_there_is_no_row(
    metadata_store: MetadataStore,
) -> None:
    meta = metadata_store
    known = await link_blob(meta, REPO, b"known")
    await claimed(meta, b"pending")
    orphan = digest_of(b"orphan")
    digests = [known, digest_of(b"pending"), orphan]
    assert await meta.garbage.mark_orphans(digests, 3.0) == [Tombstone(orphan, 0, 3.0)]
    assert await meta.garbage.mark_orphans([orphan], 4.0) == []  # already marked
    assert await meta.garbage.tombstones() == [Tombstone(orphan, 0, 3.0)]


async def test_dead_links(metadata_store: MetadataStore) -> None:
    meta = metadata_store
    await push_image(meta, b"image")  # its config and layer are used
    loose = await link_blob(meta, REPO, b"loose")
    assert await meta.garbage.dead_links(0.0) == []  # young
    assert await meta.garbage.dead_links(later()) == [(REPO, loose)]
    assert await meta.garbage.drop_links([(REPO, loose)], 0.0) == []
    assert await meta.garbage.drop_links([(REPO, loose)], later()) == [(REPO, loose)]
    assert await meta.blobs.linked_size(REPO, loose) is None
    assert await meta.garbage.drop_links([], later()) == []


async def test_a_manifest_put_touches_its_links(metadata_store: MetadataStore) -> None:
    meta = metadata_store
    layer = await link_blob(meta, REPO, b"layer")
    cutoff = time.time()
    await anyio.sleep(0.01)
    # A PUT relies on the link: it touches it, so a GC that decided on a cut-off taken
    # before the PUT does not drop it, even once the manifest is gone again.
    record = manifest(b"uses layer")
    refs = [Reference(layer, "blob")]
    assert await meta.manifests.put(record, tag="t", references=refs) == []
    assert await meta.manifests.delete(REPO, record.digest)
    assert await meta.garbage.drop_links([(REPO, layer)], cutoff) == []
    # Once dropped, a PUT that needs it answers it missing.
    assert await meta.garbage.drop_links([(REPO, layer)], later()) == [(REPO, layer)]
    assert await meta.manifests.put(record, tag="t", references=refs) == refs


async def test_unreachable_manifests(metadata_store: MetadataStore) -> None:
    meta = metadata_store
    tagged = await push_image(meta, b"tagged", tag="v1")
    child = await push_image(meta, b"child")
    index = manifest(b"index", media_type=mt.OCI_INDEX)
    children = [Reference(child.digest, "manifest")]
    assert await meta.manifests.put(index, tag="multi", references=children) == []
    signature = manifest(b"signature", subject=tagged.digest)
    assert await meta.manifests.put(signature, tag=None, references=[]) == []
    untagged = await push_image(meta, b"untagged")
    elsewhere = await push_image(meta, b"elsewhere", repository=OTHER)

    assert await meta.garbage.unreachable_manifests(0.0) == []
    found = await meta.garbage.unreachable_manifests(later())
    assert sorted(found) == sorted(
        [
            (REPO, untagged.digest, len(untagged.content)),
            (OTHER, elsewhere.digest, len(elsewhere.content)),
        ]
    )
    digests = [untagged.digest, tagged.digest, child.digest, signature.digest]
    assert await meta.garbage.delete_unreachable(REPO, digests, 0.0) == []
    gone = await meta.garbage.delete_unreachable(REPO, digests, later())
    assert gone == [untagged.digest]
    assert await meta.manifests.by_digest(REPO, untagged.digest) is None
    assert await meta.manifests.by_digest(REPO, child.digest) is not None
    # Its blobs are now unused once their links are dead.
    dead = {digest for _, digest in await meta.garbage.dead_links(later())}
    assert digest_of(b"layer:untagged") in dead


async def test_retagging_touches_the_manifest(metadata_store: MetadataStore) -> None:
    meta = metadata_store
    image = await push_image(meta, b"image", tag="v1")
    assert await meta.manifests.delete_tag(REPO, "v1")
    cutoff = time.time()
    await anyio.sleep(0.01)
    refs = [
        Reference(digest_of(b"config:image"), "blob"),
        Reference(digest_of(b"layer:image"), "blob"),
    ]
    assert await meta.manifests.put(image, tag="v2", references=refs) == []
    assert await meta.manifests.delete_tag(REPO, "v2")
    # Untagged again, but touched after the cut-off GC decided on.
    assert await meta.garbage.delete_unreachable(REPO, [image.digest], cutoff) == []


async def test_collectable(metadata_store: MetadataStore) -> None:
    meta = metadata_store
    await push_image(meta, b"kept", tag="v1")
    untagged = await push_image(meta, b"untagged")
    loose = await link_blob(meta, OTHER, b"loose")
    assert await meta.garbage.collectable(0.0, untagged=True) == {}
    assert await meta.garbage.collectable(later(), untagged=False) == {loose: 5}
    every = await meta.garbage.collectable(later(), untagged=True)
    assert every == {
        loose: 5,
        digest_of(b"config:untagged"): len(b"config:untagged"),
        digest_of(b"layer:untagged"): len(b"layer:untagged"),
    }
    assert untagged.digest not in every


async def test_claims_and_marks_race_with_one_winner(
    metadata_store: MetadataStore, database_url: str
) -> None:
    """Two connections: an upload claims what a collector marks, many times over.

    Whatever the interleaving, either the claim sees the tombstone or the mark leaves
    the blob alone; never both a claim and a tombstone.
    """
    pusher, collector = metadata_store, SqlMetadataStore(Database(database_url))
    try:
        for round_ in range(30):
            data = b"contended %d" % round_
            digest = await link_blob(pusher, REPO, data)
            await pusher.blobs.unlink(REPO, digest)
            upload_id = new_upload_id()
            await pusher.uploads.create(upload_id, OTHER)
            outcome: dict[str, object] = {}

            async def claim(
                upload_id: str = upload_id,
                data: bytes = data,
                outcome: dict[str, object] = outcome,
            ) -> None:
                outcome["claim"] = await pusher.uploads.claim(
                    upload_id, digest_of(data), len(data)
                )

            async def mark(
                digest: str = digest, outcome: dict[str, object] = outcome
            ) -> None:
                outcome["mark"] = await collector.garbage.mark_unused(
                    [digest], later(), time.time()
                )

            async with anyio.create_task_group() as group:
                group.start_soon(claim)
                group.start_soon(mark)
            marked, stone = outcome["mark"], outcome["claim"]
            assert (marked == []) == (stone is None), (round_, marked, stone)
    finally:
        await collector.close()


async def test_migration_0003_keeps_what_was_stored(database_url: str) -> None:
    """Rows from before online GC: present, touched when created, no claims."""
    db = Database(database_url)
    if not db.is_sqlite:
        reset(db)
    upgrade(db, "0002")
    digest = digest_of(b"old")

    def fill(conn: sa.Connection) -> None:
        conn.execute(sa.text("INSERT INTO blobs VALUES (:d, 3, 100.0)"), {"d": digest})
        conn.execute(
            sa.text("INSERT INTO repository_blobs VALUES (:r, :d, 200.0)"),
            {"r": REPO, "d": digest},
        )
        conn.execute(
            sa.text("INSERT INTO uploads VALUES ('u1', :r, 0, 1.0, 1.0)"), {"r": REPO}
        )

    db.run_sync(fill)
    upgrade(db)
    meta = SqlMetadataStore(db)
    try:
        assert await meta.blobs.all_records() == {digest: 3}
        assert await meta.garbage.dead_links(150.0) == []
        assert await meta.garbage.dead_links(250.0) == [(REPO, digest)]
        assert await meta.garbage.unused_blobs(later()) == {}  # linked
        assert await meta.uploads.get("u1") is not None
    finally:
        await meta.close()
