"""The ``MetadataStore`` contract (``cargohold.metadata.store``), over every database.

Each test runs once per database in the ``database_url`` fixture: SQLite in ``tmp_path``
always, PostgreSQL when ``CARGOHOLD_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import anyio
import pytest

from cargohold.metadata.outbox import DESCRIBE, SIGN, OutboxMessage
from cargohold.metadata.sql import SqlMetadataStore
from cargohold.metadata.sql_outbox import SqlOutboxStore
from cargohold.metadata.store import (
    ManifestRecord,
    Reference,
    SizeMismatch,
    Tombstone,
    UploadRecord,
)
from cargohold.oci import mediatypes as mt
from cargohold.oci.digest import Digest

from .helpers import new_upload_id

if TYPE_CHECKING:
    from cargohold.metadata.database import Database
    from cargohold.metadata.delivery import OutboxStore
    from cargohold.metadata.store import MetadataStore

REPO = "library/alpine"
OTHER = "library/busybox"
SBOM = "application/spdx+json"


def digest_of(data: bytes) -> str:
    return str(Digest.of(data))


def manifest(
    content: bytes,
    *,
    repository: str = REPO,
    media_type: str = mt.OCI_MANIFEST,
    subject: str | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> ManifestRecord:
    return ManifestRecord(
        repository=repository,
        digest=digest_of(content),
        media_type=media_type,
        content=content,
        artifact_type=artifact_type,
        subject=subject,
        annotations=json.dumps(annotations) if annotations is not None else None,
    )


async def link_blob(meta: MetadataStore, repository: str, data: bytes) -> str:
    """Record ``data`` as a finished upload into ``repository``; its digest."""
    upload_id = new_upload_id()
    await meta.uploads.create(upload_id, repository)
    await meta.blobs.link_existing(repository, digest_of(data))  # no-op if unknown
    assert await meta.uploads.claim(upload_id, digest_of(data), len(data)) is None
    assert await meta.uploads.finish(upload_id, repository, digest_of(data), len(data))
    return digest_of(data)


async def push_image(
    meta: MetadataStore,
    content: bytes,
    *,
    repository: str = REPO,
    tag: str | None = None,
) -> ManifestRecord:
    """Link a config and a layer, then put a manifest over them."""
    config = await link_blob(meta, repository, b"config:" + content)
    layer = await link_blob(meta, repository, b"layer:" + content)
    record = manifest(content, repository=repository)
    refs = [Reference(config, "blob"), Reference(layer, "blob")]
    assert await meta.manifests.put(record, tag=tag, references=refs) == []
    return record


# --- uploads --------------------------------------------------------------------------


async def test_create_and_get(metadata_store: MetadataStore) -> None:
    before = time.time()
    upload_id = new_upload_id()
    await metadata_store.uploads.create(upload_id, REPO)
    record = await metadata_store.uploads.get(upload_id)
    assert record is not None
    assert (record.id, record.repository, record.size) == (upload_id, REPO, 0)
    assert before <= record.created_at <= record.updated_at <= time.time()


async def test_get_missing_upload(metadata_store: MetadataStore) -> None:
    assert await metadata_store.uploads.get(new_upload_id()) is None


async def test_set_size_advances_only_from_the_expected_size(
    metadata_store: MetadataStore,
) -> None:
    uploads = metadata_store.uploads
    upload_id = new_upload_id()
    await uploads.create(upload_id, REPO)
    created = await uploads.get(upload_id)
    assert created is not None

    assert await uploads.set_size(upload_id, expected=0, size=5)
    assert not await uploads.set_size(upload_id, expected=0, size=9)  # lost the race
    assert not await uploads.set_size(upload_id, expected=4, size=9)
    assert await uploads.set_size(upload_id, expected=5, size=9)

    record = await uploads.get(upload_id)
    assert record is not None
    assert record.size == 9
    assert record.created_at == created.created_at
    assert record.updated_at >= created.updated_at


async def test_set_size_of_a_missing_upload(metadata_store: MetadataStore) -> None:
    assert not await metadata_store.uploads.set_size(
        new_upload_id(), expected=0, size=1
    )


async def test_concurrent_set_size_has_one_winner(
    metadata_store: MetadataStore,
) -> None:
    uploads = metadata_store.uploads
    upload_id = new_upload_id()
    await uploads.create(upload_id, REPO)
    results: list[bool] = []

    async def advance(size: int) -> None:
        results.append(await uploads.set_size(upload_id, expected=0, size=size))

    async with anyio.create_task_group() as group:
        for size in (10, 20, 30, 40):
            group.start_soon(advance, size)

    assert sorted(results) == [False, False, False, True]
    record = await uploads.get(upload_id)
    assert record is not None
    assert record.size in {10, 20, 30, 40}


async def test_finish_ends_the_session_and_links_the_blob(
    metadata_store: MetadataStore,
) -> None:
    upload_id = new_upload_id()
    await metadata_store.uploads.create(upload_id, REPO)
    assert not await metadata_store.repositories.exists(
        REPO
    )  # a session is no repository

    await metadata_store.uploads.finish(upload_id, REPO, digest_of(b"blob"), 4)
    assert await metadata_store.uploads.get(upload_id) is None
    assert await metadata_store.blobs.linked_size(REPO, digest_of(b"blob")) == 4
    assert await metadata_store.blobs.all_records() == {digest_of(b"blob"): 4}
    assert await metadata_store.repositories.exists(REPO)


async def test_finishing_known_content_links_it_again(
    metadata_store: MetadataStore,
) -> None:
    digest = await link_blob(metadata_store, REPO, b"shared")
    await link_blob(metadata_store, OTHER, b"shared")
    assert await metadata_store.blobs.linked_size(REPO, digest) == 6
    assert await metadata_store.blobs.linked_size(OTHER, digest) == 6
    assert await metadata_store.blobs.all_records() == {digest: 6}


async def test_delete_upload(metadata_store: MetadataStore) -> None:
    upload_id = new_upload_id()
    await metadata_store.uploads.create(upload_id, REPO)
    await metadata_store.uploads.delete(upload_id)
    assert await metadata_store.uploads.get(upload_id) is None
    await metadata_store.uploads.delete(upload_id)  # a missing session is not an error


async def test_older_than(metadata_store: MetadataStore) -> None:
    uploads = metadata_store.uploads
    first, second = new_upload_id(), new_upload_id()
    await uploads.create(first, REPO)
    await uploads.create(second, OTHER)
    record = await uploads.get(first)
    assert record is not None

    assert await uploads.older_than(0) == []
    assert await uploads.older_than(record.updated_at) == []  # strictly older
    stale = await uploads.older_than(time.time() + 60)
    assert {r.id for r in stale} == {first, second}
    assert all(isinstance(r, UploadRecord) for r in stale)

    await uploads.delete(second)
    assert [r.id for r in await uploads.older_than(time.time() + 60)] == [first]


# --- blobs ----------------------------------------------------------------------------


async def test_linked_size_is_per_repository(metadata_store: MetadataStore) -> None:
    digest = await link_blob(metadata_store, REPO, b"mine")
    assert await metadata_store.blobs.linked_size(REPO, digest) == 4
    assert await metadata_store.blobs.linked_size(OTHER, digest) is None
    assert await metadata_store.blobs.linked_size(REPO, digest_of(b"unknown")) is None


async def test_unlink(metadata_store: MetadataStore) -> None:
    digest = await link_blob(metadata_store, REPO, b"blob")
    await link_blob(metadata_store, OTHER, b"blob")
    assert await metadata_store.blobs.unlink(REPO, digest)
    assert not await metadata_store.blobs.unlink(REPO, digest)
    assert await metadata_store.blobs.linked_size(REPO, digest) is None
    assert await metadata_store.blobs.linked_size(OTHER, digest) == 4
    assert await metadata_store.blobs.all_records() == {digest: 4}  # the record stays


async def test_link_existing(metadata_store: MetadataStore) -> None:
    digest = await link_blob(metadata_store, REPO, b"mountable")
    assert await metadata_store.blobs.link_existing(OTHER, digest) == 9
    assert await metadata_store.blobs.linked_size(OTHER, digest) == 9
    assert await metadata_store.repositories.exists(OTHER)
    assert await metadata_store.blobs.link_existing(OTHER, digest) == 9  # idempotent


async def test_link_existing_unknown_blob(metadata_store: MetadataStore) -> None:
    assert await metadata_store.blobs.link_existing(OTHER, digest_of(b"nope")) is None
    assert await metadata_store.blobs.linked_size(OTHER, digest_of(b"nope")) is None
    assert not await metadata_store.repositories.exists(OTHER)


async def test_forget_turns_rows_into_tombstones(
    metadata_store: MetadataStore,
) -> None:
    gone = await link_blob(metadata_store, REPO, b"gone")
    await link_blob(metadata_store, OTHER, b"gone")
    kept = await link_blob(metadata_store, REPO, b"kept")

    stones = await metadata_store.blobs.forget([gone, digest_of(b"unknown")], 5.0)
    assert stones == [Tombstone(gone, 4, 5.0)]
    assert await metadata_store.blobs.all_records() == {kept: 4}
    assert await metadata_store.blobs.linked_size(REPO, gone) is None
    assert await metadata_store.blobs.linked_size(OTHER, gone) is None
    assert await metadata_store.garbage.tombstones() == stones
    assert await metadata_store.blobs.forget([], 5.0) == []


async def test_all_records(metadata_store: MetadataStore) -> None:
    assert await metadata_store.blobs.all_records() == {}
    a = await link_blob(metadata_store, REPO, b"a")
    b = await link_blob(metadata_store, OTHER, b"bb")
    assert await metadata_store.blobs.all_records() == {a: 1, b: 2}


# --- manifests ------------------------------------------------------------------------


async def test_put_with_missing_references_writes_nothing(
    metadata_store: MetadataStore,
) -> None:
    present = await link_blob(metadata_store, OTHER, b"present")
    elsewhere = await link_blob(metadata_store, OTHER, b"elsewhere")
    await metadata_store.blobs.link_existing(REPO, present)
    child_elsewhere = await push_image(metadata_store, b"child", repository=OTHER)
    refs = [
        Reference(present, "blob"),
        Reference(elsewhere, "blob"),  # linked, but in another repository
        Reference(digest_of(b"absent"), "blob"),
        Reference(child_elsewhere.digest, "manifest"),
        Reference(present, "manifest"),  # a blob is not a manifest
    ]
    record = manifest(b"incomplete")

    missing = await metadata_store.manifests.put(record, tag="latest", references=refs)
    assert missing == refs[1:]
    assert await metadata_store.manifests.by_digest(REPO, record.digest) is None
    assert await metadata_store.manifests.by_tag(REPO, "latest") is None
    assert await metadata_store.manifests.tags(REPO, last=None, limit=None) == []
    assert await metadata_store.manifests.dangling() == []


async def test_put_checks_declared_sizes_in_the_same_transaction(
    metadata_store: MetadataStore,
) -> None:
    blob = await link_blob(metadata_store, REPO, b"twelve bytes")
    child = await push_image(metadata_store, b"child manifest")
    absent = digest_of(b"absent")
    refs = [
        Reference(blob, "blob", 12),  # right
        Reference(blob, "blob", 13),  # the blob record holds 12
        Reference(child.digest, "manifest", len(child.content)),  # right
        Reference(child.digest, "manifest", 1),  # a child's size is its byte length
        Reference(absent, "blob", 5),
    ]
    record = manifest(b"mismatched")

    unmet = await metadata_store.manifests.put(record, tag="v1", references=refs)
    assert unmet == [
        SizeMismatch(refs[1], 12),
        SizeMismatch(refs[3], len(child.content)),
        refs[4],
    ]
    assert await metadata_store.manifests.by_digest(REPO, record.digest) is None
    assert await metadata_store.manifests.by_tag(REPO, "v1") is None

    right = [refs[0], refs[2], Reference(blob, "blob")]  # None: size not checked
    assert await metadata_store.manifests.put(record, tag="v1", references=right) == []
    assert await metadata_store.manifests.by_tag(REPO, "v1") == record


async def test_put_without_missing_references_into_a_new_repository(
    metadata_store: MetadataStore,
) -> None:
    record = manifest(b"no references", repository="fresh/repo")
    missing = await metadata_store.manifests.put(record, tag=None, references=[])
    assert missing == []
    assert await metadata_store.repositories.exists("fresh/repo")
    assert (
        await metadata_store.manifests.by_digest("fresh/repo", record.digest) == record
    )


async def test_put_and_read_back(metadata_store: MetadataStore) -> None:
    config = await link_blob(metadata_store, REPO, b"config")
    record = manifest(
        b'{"schemaVersion": 2, "\xc3\xa9": "\x00binary-safe"}',
        subject=digest_of(b"subject"),
        artifact_type=SBOM,
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )
    refs = [Reference(config, "blob")]
    assert await metadata_store.manifests.put(record, tag="v1", references=refs) == []
    assert await metadata_store.manifests.by_digest(REPO, record.digest) == record
    assert await metadata_store.manifests.by_tag(REPO, "v1") == record


async def test_lookups_are_per_repository(metadata_store: MetadataStore) -> None:
    record = await push_image(metadata_store, b"image", tag="latest")
    assert await metadata_store.manifests.by_digest(OTHER, record.digest) is None
    assert await metadata_store.manifests.by_tag(OTHER, "latest") is None
    assert await metadata_store.manifests.by_tag(REPO, "missing") is None
    assert await metadata_store.manifests.by_digest(REPO, digest_of(b"missing")) is None


async def test_put_with_a_tag_moves_the_tag(metadata_store: MetadataStore) -> None:
    first = await push_image(metadata_store, b"first", tag="latest")
    second = await push_image(metadata_store, b"second", tag="latest")
    assert await metadata_store.manifests.by_tag(REPO, "latest") == second
    assert await metadata_store.manifests.by_digest(REPO, first.digest) == first
    assert await metadata_store.manifests.tags(REPO, last=None, limit=None) == [
        "latest"
    ]


async def test_put_is_idempotent(metadata_store: MetadataStore) -> None:
    record = await push_image(metadata_store, b"image", tag="v1")
    refs = [
        Reference(digest_of(b"config:image"), "blob"),
        Reference(digest_of(b"layer:image"), "blob"),
    ]
    assert await metadata_store.manifests.put(record, tag="v1", references=refs) == []
    assert await metadata_store.manifests.put(record, tag="v2", references=refs) == []
    assert await metadata_store.manifests.put(record, tag=None, references=refs) == []
    assert await metadata_store.manifests.tags(REPO, last=None, limit=None) == [
        "v1",
        "v2",
    ]


async def test_delete_removes_tags_and_references(
    metadata_store: MetadataStore,
) -> None:
    doomed = await push_image(metadata_store, b"doomed", tag="v1")
    refs = [
        Reference(digest_of(b"config:doomed"), "blob"),
        Reference(digest_of(b"layer:doomed"), "blob"),
    ]
    await metadata_store.manifests.put(doomed, tag="latest", references=refs)
    kept = await push_image(metadata_store, b"kept", tag="v2")

    assert await metadata_store.manifests.delete(REPO, doomed.digest)
    assert await metadata_store.manifests.by_digest(REPO, doomed.digest) is None
    assert await metadata_store.manifests.by_tag(REPO, "latest") is None
    assert await metadata_store.manifests.tags(REPO, last=None, limit=None) == ["v2"]
    assert await metadata_store.manifests.by_tag(REPO, "v2") == kept
    for ref in refs:  # its references no longer hold the blobs
        await metadata_store.blobs.unlink(REPO, ref.digest)
    unused = await metadata_store.garbage.unused_blobs(time.time() + 1)
    assert set(unused) == {r.digest for r in refs}
    assert not await metadata_store.manifests.delete(REPO, doomed.digest)


async def test_delete_is_per_repository(metadata_store: MetadataStore) -> None:
    record = await push_image(metadata_store, b"image", tag="latest")
    assert not await metadata_store.manifests.delete(OTHER, record.digest)
    assert await metadata_store.manifests.by_tag(REPO, "latest") == record


async def test_delete_tag(metadata_store: MetadataStore) -> None:
    record = await push_image(metadata_store, b"image", tag="v1")
    assert not await metadata_store.manifests.delete_tag(OTHER, "v1")
    assert await metadata_store.manifests.delete_tag(REPO, "v1")
    assert not await metadata_store.manifests.delete_tag(REPO, "v1")
    assert await metadata_store.manifests.by_tag(REPO, "v1") is None
    assert await metadata_store.manifests.by_digest(REPO, record.digest) == record


TAGS = ["v2", "latest", "10", "9", "a", "B", "v1.0", "_x"]


@pytest.mark.parametrize(
    ("last", "limit", "expected"),
    [
        (None, None, ["10", "9", "B", "_x", "a", "latest", "v1.0", "v2"]),  # byte order
        (None, 3, ["10", "9", "B"]),
        (None, 0, []),
        (None, 100, ["10", "9", "B", "_x", "a", "latest", "v1.0", "v2"]),
        ("B", None, ["_x", "a", "latest", "v1.0", "v2"]),
        ("B", 2, ["_x", "a"]),
        ("latest", 1, ["v1.0"]),
        ("l", None, ["latest", "v1.0", "v2"]),  # last need not be a tag
        ("v2", None, []),
        ("zzz", 5, []),
    ],
)
async def test_tags_pagination(
    metadata_store: MetadataStore,
    last: str | None,
    limit: int | None,
    expected: list[str],
) -> None:
    for tag in TAGS:
        await push_image(metadata_store, b"image", tag=tag)
    await push_image(metadata_store, b"elsewhere", repository=OTHER, tag="other")
    assert await metadata_store.manifests.tags(REPO, last=last, limit=limit) == expected


async def test_tags_of_an_unknown_repository(metadata_store: MetadataStore) -> None:
    assert await metadata_store.manifests.tags("no/such", last=None, limit=None) == []


async def test_referrers(metadata_store: MetadataStore) -> None:
    subject = await push_image(metadata_store, b"subject")
    sbom = manifest(b"sbom", subject=subject.digest, artifact_type=SBOM)
    signature = manifest(b"signature", subject=subject.digest)
    unrelated = manifest(b"unrelated", subject=digest_of(b"someone else"))
    elsewhere = manifest(b"sbom", repository=OTHER, subject=subject.digest)
    for record in (sbom, signature, unrelated, elsewhere):
        assert await metadata_store.manifests.put(record, tag=None, references=[]) == []

    by_digest = sorted(
        [sbom, signature], key=lambda r: r.digest
    )  # order is unspecified
    found = await metadata_store.manifests.referrers(REPO, subject.digest)
    assert sorted(found, key=lambda r: r.digest) == by_digest
    assert await metadata_store.manifests.referrers(OTHER, subject.digest) == [
        elsewhere
    ]
    assert await metadata_store.manifests.referrers(REPO, digest_of(b"none")) == []

    await metadata_store.manifests.delete(REPO, sbom.digest)
    assert await metadata_store.manifests.referrers(REPO, subject.digest) == [signature]


async def test_referrers_do_not_need_the_subject(
    metadata_store: MetadataStore,
) -> None:
    absent = digest_of(b"not pushed yet")
    record = manifest(b"early signature", subject=absent)
    assert await metadata_store.manifests.put(record, tag=None, references=[]) == []
    assert await metadata_store.manifests.referrers(REPO, absent) == [record]


async def test_dangling(metadata_store: MetadataStore) -> None:
    assert await metadata_store.manifests.dangling() == []
    image = await push_image(metadata_store, b"image")
    child = await push_image(metadata_store, b"child")
    index = manifest(b"index", media_type=mt.OCI_INDEX)
    refs = [Reference(image.digest, "manifest"), Reference(child.digest, "manifest")]
    assert await metadata_store.manifests.put(index, tag=None, references=refs) == []
    assert await metadata_store.manifests.dangling() == []

    layer = digest_of(b"layer:image")
    await metadata_store.blobs.unlink(REPO, layer)
    await metadata_store.manifests.delete(REPO, child.digest)
    assert sorted(await metadata_store.manifests.dangling()) == sorted(
        [(REPO, image.digest, layer), (REPO, index.digest, child.digest)]
    )


# --- repositories ---------------------------------------------------------------------


async def test_exists(metadata_store: MetadataStore) -> None:
    assert not await metadata_store.repositories.exists(REPO)
    await push_image(metadata_store, b"image")
    assert await metadata_store.repositories.exists(REPO)
    assert not await metadata_store.repositories.exists("library")  # no prefix matches
    assert not await metadata_store.repositories.exists(REPO + "/sub")


NAMES = ["b", "a/x", "a", "c/d/e", "a-b", "a.b"]


@pytest.mark.parametrize(
    ("last", "limit", "expected"),
    [
        (None, None, ["a", "a-b", "a.b", "a/x", "b", "c/d/e"]),
        (None, 2, ["a", "a-b"]),
        (None, 0, []),
        ("a", None, ["a-b", "a.b", "a/x", "b", "c/d/e"]),
        ("a.b", 2, ["a/x", "b"]),
        ("b", 10, ["c/d/e"]),
        ("c/d/e", None, []),
    ],
)
async def test_names_pagination(
    metadata_store: MetadataStore,
    last: str | None,
    limit: int | None,
    expected: list[str],
) -> None:
    for name in NAMES:
        await link_blob(metadata_store, name, b"blob")
    assert await metadata_store.repositories.names(last=last, limit=limit) == expected


async def test_put_enqueues_its_jobs_only_when_the_manifest_is_stored(
    db: Database,
) -> None:
    meta: MetadataStore = SqlMetadataStore(db)
    outbox: OutboxStore = SqlOutboxStore(db)
    jobs = [
        OutboxMessage("sign:r@d", SIGN, {"repository": REPO}),
        OutboxMessage("describe:d", DESCRIBE, {"repository": REPO}),
    ]
    record = manifest(b"with jobs")
    absent = [Reference(digest_of(b"absent"), "blob")]
    unmet = await meta.manifests.put(record, tag="v1", references=absent, jobs=jobs)
    assert unmet == absent
    assert await outbox.messages(state=None, after_id=0, limit=10) == []

    assert await meta.manifests.put(record, tag="v1", references=[], jobs=jobs) == []
    queued = await outbox.messages(state=None, after_id=0, limit=10)
    assert [(m.key, m.channel, m.state) for m in queued] == [
        ("sign:r@d", SIGN, "pending"),
        ("describe:d", DESCRIBE, "pending"),
    ]
    # The same push again (or a tag moved onto it) queues nothing new.
    assert await meta.manifests.put(record, tag="v2", references=[], jobs=jobs) == []
    assert len(await outbox.messages(state=None, after_id=0, limit=10)) == 2
