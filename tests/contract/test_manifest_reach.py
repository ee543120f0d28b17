"""``ManifestIndex.reachable()``: the content a tag-limited caller may reach.

What a tag limit lets through is computed here (``AccessService.content_view`` only
caches it), so each edge is pinned: tags by the predicate, index children, referrers
(manifests whose subject is reached), the depth bound, and the blobs of what is reached.
Runs on every database, like the rest of the metadata contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cargohold.metadata.store import ManifestRecord, Reference
from cargohold.oci import mediatypes as mt

from .test_metadata_store import (
    OTHER,
    REPO,
    digest_of,
    link_blob,
    manifest,
    push_image,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from cargohold.metadata.store import MetadataStore


def blobs_of(record: ManifestRecord) -> set[str]:
    """The config and layer digests ``push_image`` linked for ``record``."""
    return {
        digest_of(b"config:" + record.content),
        digest_of(b"layer:" + record.content),
    }


async def put_index(
    meta: MetadataStore,
    name: bytes,
    children: list[ManifestRecord],
    *,
    tag: str,
    repository: str = REPO,
) -> ManifestRecord:
    record = manifest(name, repository=repository, media_type=mt.OCI_INDEX)
    refs = [Reference(child.digest, "manifest") for child in children]
    assert await meta.manifests.put(record, tag=tag, references=refs) == []
    return record


async def put_referrer(
    meta: MetadataStore, name: bytes, subject: ManifestRecord
) -> ManifestRecord:
    """An untagged manifest whose subject is ``subject`` (a signature, an SBOM)."""
    blob = await link_blob(meta, subject.repository, b"sig-blob:" + name)
    record = manifest(
        name, repository=subject.repository, subject=subject.digest, artifact_type="x"
    )
    refs = [Reference(blob, "blob")]
    assert await meta.manifests.put(record, tag=None, references=refs) == []
    return record


def only(*names: str) -> Callable[[str], bool]:
    allowed = set(names)
    return lambda tag: tag in allowed


async def test_only_tags_the_predicate_accepts_are_roots(
    metadata_store: MetadataStore,
) -> None:
    meta = metadata_store
    v1 = await push_image(meta, b"v1", tag="v1")
    v2 = await push_image(meta, b"v2", tag="v2")
    dev = await push_image(meta, b"dev", tag="dev")
    await push_image(meta, b"untagged")
    asked: list[str] = []

    def allowed(tag: str) -> bool:
        asked.append(tag)
        return tag.startswith("v")

    manifests, blobs = await meta.manifests.reachable(REPO, allowed)
    assert sorted(asked) == ["dev", "v1", "v2"]
    assert manifests == {v1.digest, v2.digest}
    assert blobs == blobs_of(v1) | blobs_of(v2)
    assert not blobs & blobs_of(dev)


async def test_nothing_allowed_reaches_nothing(metadata_store: MetadataStore) -> None:
    await push_image(metadata_store, b"v1", tag="v1")
    assert await metadata_store.manifests.reachable(REPO, lambda _: False) == (
        frozenset(),
        frozenset(),
    )
    assert await metadata_store.manifests.reachable(OTHER, lambda _: True) == (
        frozenset(),
        frozenset(),
    )


async def test_a_manifest_under_an_allowed_and_a_refused_tag_is_reached(
    metadata_store: MetadataStore,
) -> None:
    meta = metadata_store
    shared = await push_image(meta, b"shared", tag="prod")
    assert await push_image(meta, b"shared", tag="dev-1") == shared
    manifests, _ = await meta.manifests.reachable(REPO, only("dev-1"))
    assert manifests == {shared.digest}


async def test_index_children_and_their_blobs_are_reached(
    metadata_store: MetadataStore,
) -> None:
    meta = metadata_store
    amd64 = await push_image(meta, b"amd64")
    arm64 = await push_image(meta, b"arm64")
    hidden = await push_image(meta, b"hidden-child")
    index = await put_index(meta, b"index", [amd64, arm64], tag="v1")
    await put_index(meta, b"other-index", [hidden], tag="dev")

    manifests, blobs = await meta.manifests.reachable(REPO, only("v1"))
    assert manifests == {index.digest, amd64.digest, arm64.digest}
    assert blobs == blobs_of(amd64) | blobs_of(arm64)


async def test_referrers_of_reached_manifests_are_reached(
    metadata_store: MetadataStore,
) -> None:
    meta = metadata_store
    child = await push_image(meta, b"child")
    index = await put_index(meta, b"index", [child], tag="v1")
    on_index = await put_referrer(meta, b"sig-of-index", index)
    on_child = await put_referrer(meta, b"sbom-of-child", child)
    on_sig = await put_referrer(meta, b"sig-of-sbom", on_child)
    refused = await push_image(meta, b"refused", tag="dev")
    on_refused = await put_referrer(meta, b"sig-of-refused", refused)

    manifests, blobs = await meta.manifests.reachable(REPO, only("v1"))
    reached = {index.digest, child.digest, on_index.digest, on_child.digest}
    assert manifests == reached | {on_sig.digest}  # a referrer's referrer too
    assert on_refused.digest not in manifests
    assert digest_of(b"sig-blob:sig-of-sbom") in blobs
    assert digest_of(b"sig-blob:sig-of-refused") not in blobs
    assert not blobs & blobs_of(refused)


async def test_reach_stays_inside_its_repository(
    metadata_store: MetadataStore,
) -> None:
    # The same digests in another repository, with other references there: none of
    # that repository's edges (children, blobs, referrers) count here.
    meta = metadata_store
    child = await push_image(meta, b"child")
    here = await put_index(meta, b"index", [child], tag="v1")
    other_child = await push_image(meta, b"other-child", repository=OTHER)
    extra = await link_blob(meta, OTHER, b"extra")
    there = manifest(b"index", repository=OTHER, media_type=mt.OCI_INDEX)
    refs = [Reference(other_child.digest, "manifest"), Reference(extra, "blob")]
    assert await meta.manifests.put(there, tag="v1", references=refs) == []
    await put_referrer(meta, b"sig-there", there)
    assert here.digest == there.digest

    manifests, blobs = await meta.manifests.reachable(REPO, only("v1"))
    assert manifests == {here.digest, child.digest}
    assert blobs == blobs_of(child)


async def test_reach_has_a_depth_bound(metadata_store: MetadataStore) -> None:
    # A referrer chain as long as a client cares to push: reach follows it to a bound
    # (a handful of levels at least: index, child, signature, its attestation, ...),
    # never to the end, and always in order from the root.
    meta = metadata_store
    chain = [await push_image(meta, b"root", tag="v1")]
    for level in range(1, 40):
        chain.append(await put_referrer(meta, b"level-%d" % level, chain[-1]))
    manifests, _ = await meta.manifests.reachable(REPO, only("v1"))
    depth = len(manifests)
    assert 5 <= depth < len(chain)
    assert manifests == {record.digest for record in chain[:depth]}
