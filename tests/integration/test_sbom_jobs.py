"""The ``describe`` job in-process (SQLite, filesystem store): run once per digest,
run again changing nothing, the jobs it enqueues; and layers streamed from a store
with no local files (``MemoryBlobStore``) through a worker thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread
import pytest
import sqlalchemy as sa

from cargohold.api.app import open_services
from cargohold.metadata import schema as t
from cargohold.metadata.database import Database
from cargohold.metadata.outbox import DESCRIBE
from cargohold.metadata.sql_packages import SqlPackageStore
from cargohold.oci.digest import Digest
from cargohold.registry.outbox import OutboxItem
from cargohold.registry.sbom.layers import read_image
from cargohold.registry.sbom.service import BridgedSource
from cargohold.storage.memory import MemoryBlobStore
from tests.clock import ManualClock
from tests.images import image, layer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from cargohold.registry.services import Services
    from cargohold.settings import Settings

pytestmark = pytest.mark.anyio

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
APK = b"P:musl\nV:1.2.4-r2\nA:x86_64\n"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(signing={"enabled": True, "repositories": ["acme/*"]})


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """A second connection to the services' database, to look at its rows."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    opened = Database(settings.database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = open_services(settings, clock=ManualClock(1_780_000_000.0))
    await opened.start()
    try:
        yield opened
    finally:
        await opened.close()


async def _push(
    services: Services, repository: str, blobs: list[bytes], manifest: bytes
) -> None:
    for blob in blobs:
        await services.attacher.blob(repository, blob, "application/octet-stream")
    await services.attacher.manifest(repository, manifest, MANIFEST, tag="v1")


def outbox(database: Database) -> dict[str, tuple[str, Any]]:
    o = t.outbox.c
    rows = database.run_sync(
        lambda conn: conn.execute(sa.select(o.key, o.channel, o.payload)).all()
    )
    return {row.key: (row.channel, row.payload) for row in rows}


async def test_describe_runs_once_per_digest_and_enqueues_its_jobs(
    services: Services, database: Database
) -> None:
    built = image([layer({"lib/apk/db/installed": APK})])
    await _push(services, "acme/app", built.blobs, built.manifest)
    await _push(services, "team/app", built.blobs, built.manifest)
    queued = outbox(database)
    describe_key = f"describe:acme/app@{built.digest}"
    assert queued[describe_key][0] == DESCRIBE  # one job per repository and digest
    assert queued[f"describe:team/app@{built.digest}"][0] == DESCRIBE

    item = OutboxItem(
        1, describe_key, DESCRIBE, {"repository": "acme/app", "digest": built.digest}, 0
    )
    await services.sbom.describe(item)
    after = outbox(database)
    new = sorted(set(after) - set(queued))
    assert new == [
        f"attest:sbom:acme/app@{built.digest}",  # signing covers acme/* only
        f"match:{built.digest}:1780000000.0",
    ]
    description = await SqlPackageStore(database).description(built.digest)
    assert description is not None
    assert (description.state, description.package_count) == ("done", 1)
    assert description.facts["platform"] == {"architecture": "amd64", "os": "linux"}
    assert description.facts["size"] == sum(len(b) for b in built.blobs)

    # Run again (a retry, a lease that ran out, team/app's job): nothing changes.
    await services.sbom.describe(item)
    team = {"repository": "team/app", "digest": built.digest}
    await services.sbom.describe(OutboxItem(2, "describe:team", DESCRIBE, team, 0))
    assert outbox(database) == after
    again = await SqlPackageStore(database).description(built.digest)
    assert again == description
    # Pushed later to another signed repository: read once, but attested there too.
    await _push(services, "acme/other", built.blobs, built.manifest)
    other = {"repository": "acme/other", "digest": built.digest}
    await services.sbom.describe(OutboxItem(3, "describe:other", DESCRIBE, other, 0))
    assert sorted(set(outbox(database)) - set(after)) == [
        f"attest:provenance:acme/other@{built.digest}",  # queued by the push
        f"attest:sbom:acme/other@{built.digest}",
        f"describe:acme/other@{built.digest}",
        f"sign:acme/other@{built.digest}",
    ]
    assert await SqlPackageStore(database).description(built.digest) == description


async def test_an_artifact_is_skipped(services: Services, database: Database) -> None:
    config = b'{"kind": "not an image"}'
    manifest = (
        b'{"schemaVersion":2,"mediaType":"' + MANIFEST.encode() + b'",'
        b'"config":{"mediaType":"application/vnd.example.thing+json","digest":"'
        + str(Digest.of(config)).encode()
        + b'","size":'
        + str(len(config)).encode()
        + b'},"layers":[]}'
    )
    await _push(services, "acme/thing", [config], manifest)
    digest = str(Digest.of(manifest))
    item = OutboxItem(
        1,
        f"describe:acme/thing@{digest}",
        DESCRIBE,
        {"repository": "acme/thing", "digest": digest},
        0,
    )
    before = outbox(database)
    await services.sbom.describe(item)
    description = await SqlPackageStore(database).description(digest)
    assert description is not None
    assert description.state == "skipped"
    assert outbox(database) == before  # nothing to match or attest


async def test_layers_stream_from_a_store_without_files() -> None:
    store = MemoryBlobStore()
    data = layer({"lib/apk/db/installed": APK}, compression="zstd")
    digest = Digest.of(data)

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 7):  # many small chunks
            yield data[start : start + 7]

    await store.begin_upload("u")
    await store.append("u", 0, body(), None)
    await store.commit("u", digest, size=len(data))
    found = await anyio.to_thread.run_sync(
        lambda: read_image([BridgedSource(store.open(digest))], limit=1 << 20)
    )
    assert [(f.name, f.version) for f in found] == [("musl", "1.2.4-r2")]
