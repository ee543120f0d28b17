"""Cosign attachment tags follow their image (``registry/limits.py``), every database.

A tag ``sha256-<hex>.sig|.att|.sbom`` is readable by whoever may read manifest
``sha256:<hex>``, and so is what it reaches (its payload blobs); the attachments of
content outside the caller's tags stay hidden, with the same refusal as any tag.

One table: caller's pull limit → which attachment tags it may read and list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from cargohold.auth.policy import ANONYMOUS, Principal, TagLimit
from cargohold.oci.digest import Digest
from cargohold.oci.errors import Denied, RegistryError
from cargohold.oci.names import RepositoryName
from cargohold.registry.limits import LoginRequired, RepositoryAccess, TagLimits
from cargohold.registry.manifests import ManifestRef, ManifestService

from .test_metadata_store import REPO, digest_of, push_image

if TYPE_CHECKING:
    from cargohold.metadata.store import MetadataStore

ALICE = Principal("user", "user:alice")


@dataclass(frozen=True)
class Case:
    principal: Principal
    tags: TagLimit
    readable: set[str]  # the images ("latest", "prod", "orphan") whose attachments
    refusal: type[RegistryError] = Denied


CASES = {
    "unlimited": Case(ALICE, None, {"latest", "prod", "orphan"}),
    "anonymous, starter tag latest": Case(
        ANONYMOUS, ("latest",), {"latest"}, LoginRequired
    ),
    "pull token limited to prod*": Case(ALICE, ("prod*",), {"prod"}),
    "an empty limit": Case(ALICE, (), set()),
    "a pattern covering attachment tags reads them all": Case(
        ALICE, ("latest", "sha256-*"), {"latest", "prod", "orphan"}
    ),
}  # fmt: skip


def attachment(digest: str, kind: str) -> str:
    return digest.replace(":", "-", 1) + "." + kind


@pytest.mark.parametrize("name", list(CASES))
async def test_attachments_follow_their_image(
    metadata_store: MetadataStore, name: str
) -> None:
    case = CASES[name]
    meta = metadata_store
    images = {
        "latest": (await push_image(meta, b"latest", tag="latest")).digest,
        "prod": (await push_image(meta, b"prod", tag="prod")).digest,
        # No tag: only its attachment tags point at anything about it.
        "orphan": (await push_image(meta, b"orphan")).digest,
    }
    payloads = {}
    for image, digest in images.items():
        for kind in ("sig", "att", "sbom"):
            content = f"{kind} of {image}".encode()
            await push_image(meta, content, tag=attachment(digest, kind))
            payloads[image, kind] = digest_of(b"layer:" + content)
    limits = TagLimits(meta)
    manifests = ManifestService(meta, limits)
    access = RepositoryAccess(
        RepositoryName.parse(REPO), case.principal, {"pull": case.tags}
    )

    for image, digest in images.items():
        for kind in ("sig", "att", "sbom"):
            tag = attachment(digest, kind)
            payload = Digest.parse(payloads[image, kind])
            if image in case.readable:
                pulled = await manifests.get(access, ManifestRef.parse(tag))
                assert pulled.content == f"{kind} of {image}".encode()
                assert await limits.reaches(access, payload), (image, kind)
            else:
                with pytest.raises(case.refusal):
                    await manifests.get(access, ManifestRef.parse(tag))
                assert not await limits.reaches(access, payload), (image, kind)

    every = sorted(
        [
            *images,
            *(
                attachment(d, k)
                for d in images.values()
                for k in ("sig", "att", "sbom")
            ),
        ]
    )
    visible = await limits.visible_tags(access, every)
    expected = {
        attachment(images[image], kind)
        for image in case.readable
        for kind in ("sig", "att", "sbom")
    }
    assert {t for t in visible if t.startswith("sha256-")} == expected
