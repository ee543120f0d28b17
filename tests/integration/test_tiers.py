"""The two tiers.

Anonymous starter pulls from public repositories, entitled production.
"""

from __future__ import annotations

import json

import httpx
import pytest

from cargohold.auth.policy import Principal
from cargohold.oci.errors import Denied
from cargohold.registry.admin import InvalidRequest
from tests.apptypes import MakeClient
from tests.clock import ManualClock
from tests.integration.authhelpers import (
    ADMIN,
    ROOT,
    as_user,
    bearer,
    services_of,
    token,
    token_auth_client,
)
from tests.integration.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    digest_of,
    push_blob,
    push_image,
)

pytestmark = pytest.mark.anyio


async def _publish(client: httpx.AsyncClient) -> dict[str, str]:
    """Publish acme/python.

    latest → index(amd64 child) + a signature referrer; 3.12.1 separate.
    """
    admin_headers = await as_user(client, "acme/python", "pull,push,delete", auth=ADMIN)
    client.headers.update(admin_headers)
    child, child_bytes = await push_image(
        client, "acme/python", "amd64-build", seed="c"
    )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(child_bytes, OCI_MANIFEST)],
        }
    ).encode()
    put = await client.put(
        "/v2/acme/python/manifests/latest",
        content=index,
        headers={"Content-Type": OCI_INDEX},
    )
    assert put.status_code == 201
    await push_blob(client, "acme/python", b"{}")
    sig_layer = await push_blob(client, "acme/python", b"signature")
    signature = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "config": descriptor(b"{}", "application/vnd.oci.empty.v1+json"),
            "layers": [descriptor(b"signature", "application/octet-stream")],
            "subject": descriptor(index, OCI_INDEX),
        }
    ).encode()
    put = await client.put(
        f"/v2/acme/python/manifests/{digest_of(signature)}",
        content=signature,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert put.status_code == 201
    version, _ = await push_image(client, "acme/python", "3.12.1", seed="v")
    await push_image(client, "acme/python", "3.13.0", seed="w")
    layer = digest_of(b"layer-c" * 100)
    version_layer = digest_of(b"layer-v" * 100)
    client.headers.pop("Authorization")
    await services_of(client).auth.admin.create_organization(ROOT, "acme", client="t")
    return {
        "index": digest_of(index),
        "child": child,
        "signature": digest_of(signature),
        "sig_layer": sig_layer,
        "version": version,
        "layer": layer,
        "version_layer": version_layer,
    }


async def _make_public(client: httpx.AsyncClient, repo: str = "acme/python") -> None:
    await services_of(client).auth.admin.set_repository(
        ROOT, repo, visibility="public", starter_tags=None, client="t"
    )


async def test_private_by_default(auth_client: httpx.AsyncClient) -> None:
    await _publish(auth_client)
    headers = await as_user(auth_client, "acme/python")
    response = await auth_client.get(
        "/v2/acme/python/manifests/latest", headers=headers
    )
    assert_error(response, 401, "UNAUTHORIZED")


async def test_anonymous_pulls_starter_content(auth_client: httpx.AsyncClient) -> None:
    d = await _publish(auth_client)
    await _make_public(auth_client)
    anonymous = await as_user(auth_client, "acme/python")
    base = "/v2/acme/python"
    for path in (
        f"{base}/manifests/latest",
        f"{base}/manifests/{d['index']}",
        f"{base}/manifests/{d['child']}",
        f"{base}/manifests/{d['signature']}",
        f"{base}/blobs/{d['layer']}",
        f"{base}/blobs/{d['sig_layer']}",
        f"{base}/referrers/{d['index']}",
    ):
        response = await auth_client.get(path, headers=anonymous)
        assert response.status_code == 200, path
    referrers = (
        await auth_client.get(f"{base}/referrers/{d['index']}", headers=anonymous)
    ).json()
    assert [m["digest"] for m in referrers["manifests"]] == [d["signature"]]
    tags = await auth_client.get(f"{base}/tags/list", headers=anonymous)
    assert tags.json()["tags"] == ["latest"]


async def test_anonymous_cannot_pull_versions_or_pin(
    auth_client: httpx.AsyncClient,
) -> None:
    d = await _publish(auth_client)
    await _make_public(auth_client)
    anonymous = await as_user(auth_client, "acme/python")
    base = "/v2/acme/python"
    for path in (
        f"{base}/manifests/3.12.1",
        f"{base}/manifests/{d['version']}",
        f"{base}/blobs/{d['version_layer']}",
        f"{base}/manifests/no-such-tag",
        f"{base}/manifests/{digest_of(b'never pushed')}",
    ):
        response = await auth_client.get(path, headers=anonymous)
        assert_error(response, 401, "UNAUTHORIZED")
        assert (
            'scope="repository:acme/python:pull"'
            in response.headers["WWW-Authenticate"]
        )


async def test_private_repositories_do_not_exist_for_outsiders(
    auth_client: httpx.AsyncClient,
) -> None:
    await _publish(auth_client)
    existing = await auth_client.get(
        "/v2/acme/python/tags/list", headers=await as_user(auth_client, "acme/python")
    )
    missing = await auth_client.get(
        "/v2/acme/nothing/tags/list", headers=await as_user(auth_client, "acme/nothing")
    )
    assert existing.status_code == missing.status_code == 401
    assert existing.json()["errors"][0]["code"] == missing.json()["errors"][0]["code"]
    assert existing.headers["WWW-Authenticate"].replace(
        "python", "X"
    ) == missing.headers["WWW-Authenticate"].replace("nothing", "X")
    one = await auth_client.get(
        "/token", params={"scope": "repository:acme/python:pull"}
    )
    two = await auth_client.get(
        "/token", params={"scope": "repository:acme/nothing:pull"}
    )
    import jwt

    assert (
        jwt.decode(one.json()["token"], options={"verify_signature": False})["access"]
        == jwt.decode(two.json()["token"], options={"verify_signature": False})[
            "access"
        ]
        == []
    )


async def test_catalog_shows_what_each_caller_may_pull(
    auth_client: httpx.AsyncClient,
) -> None:
    await _publish(auth_client)
    admin_headers = await as_user(auth_client, "acme/secret", "pull,push", auth=ADMIN)
    auth_client.headers.update(admin_headers)
    await push_image(auth_client, "acme/secret", "latest")
    auth_client.headers.pop("Authorization")
    await _make_public(auth_client)
    anonymous = bearer(await token(auth_client, "registry:catalog:*"))
    listing = await auth_client.get("/v2/_catalog", headers=anonymous)
    assert listing.json()["repositories"] == ["acme/python"]
    admin = bearer(await token(auth_client, "registry:catalog:*", auth=ADMIN))
    listing = await auth_client.get("/v2/_catalog", headers=admin)
    assert listing.json()["repositories"] == ["acme/python", "acme/secret"]


async def test_entitled_user_with_tag_limits(auth_client: httpx.AsyncClient) -> None:
    d = await _publish(auth_client)
    admin = services_of(auth_client).auth.admin
    await admin.create_user(ROOT, "carol", "carol-password-1", client="t")
    await admin.add_grant(
        ROOT,
        principal="user:carol",
        organization="acme",
        repository="acme/python",
        role="puller",
        tags=["3.12*"],
        client="t",
    )
    carol = await as_user(
        auth_client, "acme/python", auth=("carol", "carol-password-1")
    )
    base = "/v2/acme/python"
    assert (
        await auth_client.get(f"{base}/manifests/3.12.1", headers=carol)
    ).status_code == 200
    assert (
        await auth_client.get(f"{base}/manifests/{d['version']}", headers=carol)
    ).status_code == 200
    assert (
        await auth_client.get(f"{base}/blobs/{d['version_layer']}", headers=carol)
    ).status_code == 200
    denied = await auth_client.get(f"{base}/manifests/3.13.0", headers=carol)
    assert_error(denied, 403, "DENIED")
    assert_error(
        await auth_client.get(f"{base}/manifests/latest", headers=carol), 403, "DENIED"
    )
    tags = await auth_client.get(f"{base}/tags/list", headers=carol)
    assert tags.json()["tags"] == ["3.12.1"]
    push = await auth_client.post(f"{base}/blobs/uploads/", headers=carol)
    assert_error(push, 401, "UNAUTHORIZED")


async def test_org_member_pulls_everything(auth_client: httpx.AsyncClient) -> None:
    d = await _publish(auth_client)
    admin = services_of(auth_client).auth.admin
    await admin.create_user(ROOT, "dave", "dave-password-12", client="t")
    await admin.set_member(ROOT, "acme", "dave", "pusher", client="t")
    dave = await as_user(
        auth_client, "acme/python", "pull,push", auth=("dave", "dave-password-12")
    )
    for ref in ("latest", "3.12.1", "3.13.0", d["version"]):
        response = await auth_client.get(
            f"/v2/acme/python/manifests/{ref}", headers=dave
        )
        assert response.status_code == 200
    started = await auth_client.post("/v2/acme/python/blobs/uploads/", headers=dave)
    assert started.status_code == 202
    other = await as_user(
        auth_client, "other/repo", "pull,push", auth=("dave", "dave-password-12")
    )
    assert_error(
        await auth_client.post("/v2/other/repo/blobs/uploads/", headers=other),
        401,
        "UNAUTHORIZED",
    )


async def test_pull_token_and_instant_revocation(
    auth_client: httpx.AsyncClient,
) -> None:
    await _publish(auth_client)
    admin = services_of(auth_client).auth.admin
    created = await admin.create_pull_token(ROOT, "acme", description="ci", client="t")
    secret = created.secret
    assert secret.startswith("chp_")
    headers = await as_user(
        auth_client, "acme/python", "pull,push", auth=("any", secret)
    )
    response = await auth_client.get(
        "/v2/acme/python/manifests/3.12.1", headers=headers
    )
    assert response.status_code == 200
    # Read-only by default: the token carries pull only.
    assert_error(
        await auth_client.post("/v2/acme/python/blobs/uploads/", headers=headers),
        401,
        "UNAUTHORIZED",
    )
    await admin.revoke_pull_token(ROOT, "acme", created.record.id, client="t")
    assert_error(
        await auth_client.get("/v2/acme/python/manifests/3.12.1", headers=headers),
        401,
        "UNAUTHORIZED",
    )
    refused = await auth_client.get("/token", auth=("any", secret))
    assert_error(refused, 401, "UNAUTHORIZED")


async def test_expired_pull_token(make_client: MakeClient) -> None:
    clock = ManualClock()
    # No reuse of "is this token still valid?": the bearer check reads the clock too.
    client = await token_auth_client(
        make_client, clock=clock, auth={"revocation_check_seconds": 0}
    )
    admin = services_of(client).auth.admin
    await admin.create_organization(ROOT, "acme", client="t")
    created = await admin.create_pull_token(
        ROOT, "acme", description="short-lived", expires_in_days=1, client="t"
    )
    credentials = ("x", created.secret)
    headers = bearer(await token(client, "repository:acme/app:pull", auth=credentials))
    tags = "/v2/acme/app/tags/list"
    assert_error(await client.get(tags, headers=headers), 404, "NAME_UNKNOWN")

    clock.advance(2 * 86400)

    assert_error(await client.get("/token", auth=credentials), 401, "UNAUTHORIZED")
    assert_error(await client.get(tags, headers=headers), 401, "UNAUTHORIZED")


async def test_pull_tokens_stay_inside_their_organization(
    auth_client: httpx.AsyncClient,
) -> None:
    admin = services_of(auth_client).auth.admin
    await admin.create_organization(ROOT, "acme", client="t")
    for pattern in ("*", "other/*", "acme"):
        with pytest.raises(InvalidRequest):
            await admin.create_pull_token(
                ROOT, "acme", description="x", repository=pattern, client="t"
            )
    with pytest.raises(InvalidRequest):
        await admin.create_pull_token(
            ROOT, "acme", description="x", role="god", client="t"
        )
    assert await admin.pull_tokens(ROOT, "acme") == []  # nothing half-written


async def test_owner_pull_token_cannot_manage(auth_client: httpx.AsyncClient) -> None:
    admin = services_of(auth_client).auth.admin
    await admin.create_organization(ROOT, "acme", client="t")
    created = await admin.create_pull_token(
        ROOT, "acme", description="x", role="owner", client="t"
    )
    machine = Principal("token", f"token:{created.record.id}")
    with pytest.raises(Denied):
        await admin.create_pull_token(machine, "acme", description="more", client="t")


async def test_recreated_organization_does_not_inherit_public_repos(
    auth_client: httpx.AsyncClient,
) -> None:
    admin = services_of(auth_client).auth.admin
    await admin.create_organization(ROOT, "acme", client="t")
    await _make_public(auth_client, "acme/python")
    await admin.delete_organization(ROOT, "acme", client="t")
    await admin.create_organization(ROOT, "acme", client="t")
    settings = await admin.repository_settings(ROOT, "acme/python")
    assert settings.visibility == "private"


async def test_starter_tags_are_configurable(auth_client: httpx.AsyncClient) -> None:
    await _publish(auth_client)
    await services_of(auth_client).auth.admin.set_repository(
        ROOT, "acme/python", visibility="public", starter_tags=["3.12*"], client="t"
    )
    anonymous = await as_user(auth_client, "acme/python")
    ok = await auth_client.get("/v2/acme/python/manifests/3.12.1", headers=anonymous)
    assert ok.status_code == 200
    refused = await auth_client.get(
        "/v2/acme/python/manifests/latest", headers=anonymous
    )
    assert refused.status_code == 401


async def test_pagination_links_never_name_hidden_things(
    auth_client: httpx.AsyncClient,
) -> None:
    await _publish(auth_client)  # tags 3.12.1, 3.13.0, amd64-build sort before latest
    admin_headers = await as_user(
        auth_client, "acme/aaa-secret", "pull,push", auth=ADMIN
    )
    auth_client.headers.update(admin_headers)
    await push_image(auth_client, "acme/aaa-secret", "latest")
    auth_client.headers.pop("Authorization")
    await _make_public(auth_client)
    anonymous = await as_user(auth_client, "acme/python")
    tags = await auth_client.get(
        "/v2/acme/python/tags/list", params={"n": 1}, headers=anonymous
    )
    assert tags.json()["tags"] == ["latest"]
    assert "Link" not in tags.headers  # nothing visible follows, nothing hidden named
    catalog = await auth_client.get(
        "/v2/_catalog",
        params={"n": 1},
        headers=bearer(await token(auth_client, "registry:catalog:*")),
    )
    assert catalog.json()["repositories"] == ["acme/python"]
    assert "secret" not in catalog.headers.get("Link", "")
