"""Manifests: push and pull by tag and digest, validation, delete, subject/referrers."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.integration.helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
)

pytestmark = pytest.mark.anyio


async def test_push_and_pull_exact_bytes(client: httpx.AsyncClient) -> None:
    digest, manifest = await push_image(client, "lib/app", "v1")
    for ref in ("v1", digest):
        response = await client.get(
            f"/v2/lib/app/manifests/{ref}", headers={"Accept": OCI_MANIFEST}
        )
        assert response.status_code == 200
        assert response.content == manifest
        assert response.headers["Content-Type"] == OCI_MANIFEST
        assert response.headers["Docker-Content-Digest"] == digest
        head = await client.head(f"/v2/lib/app/manifests/{ref}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(manifest))
        assert head.content == b""
    assert digest == digest_of(manifest)


async def test_put_response_headers(client: httpx.AsyncClient) -> None:
    config, layer = b"{}", b"layer"
    await push_blob(client, "r", config)
    await push_blob(client, "r", layer)
    body = image_manifest(config, [layer])
    response = await client.put(
        "/v2/r/manifests/t", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/r/manifests/{digest_of(body)}"
    assert "OCI-Subject" not in response.headers


async def test_docker_manifest_and_list(client: httpx.AsyncClient) -> None:
    config, layer = b'{"os":"linux"}', b"docker layer"
    await push_blob(client, "d", config)
    await push_blob(client, "d", layer)
    manifest = image_manifest(config, [layer], media_type=DOCKER_MANIFEST)
    put = await client.put(
        "/v2/d/manifests/amd64",
        content=manifest,
        headers={"Content-Type": DOCKER_MANIFEST},
    )
    assert put.status_code == 201
    listing = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                descriptor(
                    manifest,
                    DOCKER_MANIFEST,
                    platform={"architecture": "amd64", "os": "linux"},
                )
            ],
        }
    ).encode()
    put = await client.put(
        "/v2/d/manifests/latest", content=listing, headers={"Content-Type": DOCKER_LIST}
    )
    assert put.status_code == 201
    got = await client.get("/v2/d/manifests/latest")
    assert got.headers["Content-Type"] == DOCKER_LIST
    assert got.content == listing


async def test_index_requires_children(client: httpx.AsyncClient) -> None:
    _, child = await push_image(client, "m", "amd64")
    children = [descriptor(child, OCI_MANIFEST)]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    ok = await client.put(
        "/v2/m/manifests/multi",
        content=json.dumps(index).encode(),
        headers={"Content-Type": OCI_INDEX},
    )
    assert ok.status_code == 201
    children.append(descriptor(b"missing child", OCI_MANIFEST))
    bad = await client.put(
        "/v2/m/manifests/multi2",
        content=json.dumps(index).encode(),
        headers={"Content-Type": OCI_INDEX},
    )
    assert_error(bad, 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(await client.get("/v2/m/manifests/multi2"), 404, "MANIFEST_UNKNOWN")


async def test_missing_layer_stores_nothing(client: httpx.AsyncClient) -> None:
    config = b"{}"
    await push_blob(client, "r", config)
    body = image_manifest(config, [b"never uploaded"])
    response = await client.put(
        "/v2/r/manifests/t", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert response.json()["errors"][0]["detail"] == [digest_of(b"never uploaded")]
    assert_error(await client.get("/v2/r/manifests/t"), 404, "MANIFEST_UNKNOWN")
    assert_error(
        await client.get(f"/v2/r/manifests/{digest_of(body)}"), 404, "MANIFEST_UNKNOWN"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"not json", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b"[1, 2]", OCI_MANIFEST, "MANIFEST_INVALID"),
        (
            b'{"schemaVersion": 2, "mediaType": "application/x-unknown"}',
            "application/x-unknown",
            "MANIFEST_INVALID",
        ),
        (
            b'{"schemaVersion": 1}',
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            "UNSUPPORTED",
        ),
        (
            json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            ).encode(),
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
        (
            b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'"}',
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
    ],
)
async def test_invalid_manifests(
    client: httpx.AsyncClient, body: bytes, content_type: str, code: str
) -> None:
    response = await client.put(
        "/v2/r/manifests/bad", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code in (400, 415)
    assert response.json()["errors"][0]["code"] == code
    assert_error(await client.get("/v2/r/manifests/bad"), 404, "MANIFEST_UNKNOWN")


async def test_oversized_manifest_is_413(client: httpx.AsyncClient) -> None:
    body = b'{"pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    response = await client.put(
        "/v2/r/manifests/big", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 413, "SIZE_INVALID")


async def test_push_by_digest_must_match(client: httpx.AsyncClient) -> None:
    config = b"{}"
    await push_blob(client, "r", config)
    body = image_manifest(config, [])
    wrong = digest_of(b"something else")
    response = await client.put(
        f"/v2/r/manifests/{wrong}", content=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 400, "DIGEST_INVALID")
    right = await client.put(
        f"/v2/r/manifests/{digest_of(body)}",
        content=body,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert right.status_code == 201


async def test_malformed_references(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.get("/v2/r/manifests/sha256:totallywrong"), 400, "DIGEST_INVALID"
    )
    assert_error(await client.get("/v2/r/manifests/.bad-tag"), 404, "MANIFEST_UNKNOWN")
    put = await client.put(
        "/v2/r/manifests/.bad-tag",
        content=b"{}",
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_error(put, 400, "MANIFEST_INVALID")


async def test_delete_by_tag_keeps_manifest(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "r", "v1")
    assert (await client.delete("/v2/r/manifests/v1")).status_code == 202
    assert_error(await client.get("/v2/r/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert (await client.get(f"/v2/r/manifests/{digest}")).status_code == 200


async def test_delete_by_digest_removes_tags(client: httpx.AsyncClient) -> None:
    digest, _ = await push_image(client, "r", "v1")
    await client.put(
        "/v2/r/manifests/v2",
        content=(await client.get("/v2/r/manifests/v1")).content,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert (await client.delete(f"/v2/r/manifests/{digest}")).status_code == 202
    for ref in ("v1", "v2", digest):
        assert_error(
            await client.get(f"/v2/r/manifests/{ref}"), 404, "MANIFEST_UNKNOWN"
        )
    assert (await client.get("/v2/r/tags/list")).json()["tags"] == []
    assert_error(
        await client.delete(f"/v2/r/manifests/{digest}"), 404, "MANIFEST_UNKNOWN"
    )


async def test_retag_moves_tag(client: httpx.AsyncClient) -> None:
    first, _ = await push_image(client, "r", "latest", seed="1")
    second, _ = await push_image(client, "r", "latest", seed="2")
    assert first != second
    got = await client.get("/v2/r/manifests/latest")
    assert got.headers["Docker-Content-Digest"] == second


async def test_subject_and_referrers(client: httpx.AsyncClient) -> None:
    subject_digest, subject = await push_image(client, "r", "v1")
    empty = b"{}"
    await push_blob(client, "r", empty)
    signature = b"signature bytes"
    await push_blob(client, "r", signature)
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": descriptor(empty, "application/vnd.oci.empty.v1+json"),
            "layers": [descriptor(signature, "application/octet-stream")],
            "subject": descriptor(subject, OCI_MANIFEST),
            "annotations": {"org.example": "yes"},
        }
    ).encode()
    put = await client.put(
        f"/v2/r/manifests/{digest_of(artifact)}",
        content=artifact,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 201
    assert put.headers["OCI-Subject"] == subject_digest

    # An image manifest with a subject and no artifactType: its config type is used.
    sbom_config = b'{"sbom": true}'
    await push_blob(client, "r", sbom_config)
    sbom = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(sbom_config, "application/vnd.example.sbom.config"),
            "layers": [],
            "subject": descriptor(subject, OCI_MANIFEST),
        }
    ).encode()
    assert (
        await client.put(
            "/v2/r/manifests/sbom", content=sbom, headers={"Content-Type": OCI_MANIFEST}
        )
    ).status_code == 201

    listing = await client.get(f"/v2/r/referrers/{subject_digest}")
    assert listing.status_code == 200
    assert listing.headers["Content-Type"] == OCI_INDEX
    index = listing.json()
    assert index["schemaVersion"] == 2
    by_digest = {m["digest"]: m for m in index["manifests"]}
    assert by_digest[digest_of(artifact)] == {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of(artifact),
        "size": len(artifact),
        "artifactType": "application/vnd.example.signature",
        "annotations": {"org.example": "yes"},
    }
    assert (
        by_digest[digest_of(sbom)]["artifactType"]
        == "application/vnd.example.sbom.config"
    )
    assert "OCI-Filters-Applied" not in listing.headers

    filtered = await client.get(
        f"/v2/r/referrers/{subject_digest}",
        params={"artifactType": "application/vnd.example.signature"},
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [digest_of(artifact)]


async def test_subject_may_be_missing(client: httpx.AsyncClient) -> None:
    empty = b"{}"
    await push_blob(client, "r", empty)
    ghost = descriptor(b"not pushed yet", OCI_MANIFEST)
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "x/y",
            "config": descriptor(empty, "application/vnd.oci.empty.v1+json"),
            "layers": [],
            "subject": ghost,
        }
    ).encode()
    put = await client.put(
        "/v2/r/manifests/a", content=artifact, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 201
    listing = await client.get(f"/v2/r/referrers/{ghost['digest']}")
    assert len(listing.json()["manifests"]) == 1


async def test_referrers_of_unknown_digest_is_empty(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v2/nothing/referrers/{digest_of(b'x')}")
    assert response.status_code == 200
    assert response.json()["manifests"] == []
    assert_error(await client.get("/v2/r/referrers/sha256:bad"), 400, "DIGEST_INVALID")
