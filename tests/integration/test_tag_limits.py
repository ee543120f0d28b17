"""Tag limits hold for every verb: verb x grant shape x reference, as a table.

One repository, ``acme/app``, public with the starter tags ``dev-*``, holds content
inside and outside the pattern ``dev-*``; every grant shape below is limited to
``dev-*`` except the administrator and the unlimited owner. Each row names a request and
the status every shape must get. Rows that delete run on fresh content, one per test.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.authhelpers import ADMIN, ROOT, bearer, services_of, token
from tests.integration.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    digest_of,
    image_manifest,
    push_blob,
)
from tests.oidc_issuer import OidcIssuer

pytestmark = pytest.mark.anyio

APP, OTHER = "acme/app", "acme/other"
SCOPES = (f"repository:{APP}:pull,push,delete", f"repository:{OTHER}:pull,push")
SHAPES = ("admin", "owner", "owner-dev", "puller-dev", "token-dev", "oidc-dev", "anon")
DELETERS = ("admin", "owner", "owner-dev")
EMPTY = "application/vnd.oci.empty.v1+json"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
CI_SUBJECT = "repo:acme/app:ref:refs/heads/main"


def _config(seed: str) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()


def _layer(seed: str) -> bytes:
    return f"layer-{seed}".encode() * 50


def _referrer(subject: bytes, seed: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIG,
            "config": descriptor(b"{}", EMPTY),
            "layers": [descriptor(_layer(seed), "application/octet-stream")],
            "subject": descriptor(subject, OCI_MANIFEST),
        }
    ).encode()


@dataclass(frozen=True)
class Content:
    """What was published: digests (``ref``), manifest bodies to push (``body``).

    ``admin`` holds the administrator's headers, to check what is left.
    """

    ref: dict[str, str]
    body: dict[str, bytes]
    admin: dict[str, str]


async def _put(client: httpx.AsyncClient, ref: str, body: bytes, kind: str) -> None:
    response = await client.put(
        f"/v2/{APP}/manifests/{ref}", content=body, headers={"Content-Type": kind}
    )
    assert response.status_code == 201, response.text


async def _publish(client: httpx.AsyncClient) -> Content:
    """Push the content every row refers to, as the administrator."""
    admin = bearer(await token(client, *SCOPES, auth=ADMIN))
    client.headers.update(admin)
    for seed in ("d", "c", "p", "u", "m", "s", "sp", "shared", "o", "n1", "n2", "n3"):
        await push_blob(client, APP, _layer(seed))
        await push_blob(client, APP, _config(seed))
    await push_blob(client, APP, b"{}")
    manifests = {
        "D": image_manifest(_config("d"), [_layer("d"), _layer("shared")]),
        "C": image_manifest(_config("c"), [_layer("c")]),
        "P": image_manifest(_config("p"), [_layer("p"), _layer("shared")]),
        "U": image_manifest(_config("u"), [_layer("u")]),
        "M": image_manifest(_config("m"), [_layer("m")]),
    }
    manifests["I"] = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(manifests["C"], OCI_MANIFEST)],
        }
    ).encode()
    manifests["S"] = _referrer(manifests["D"], "s")
    manifests["SP"] = _referrer(manifests["P"], "sp")
    for name in ("C", "U", "S", "SP"):
        await _put(client, digest_of(manifests[name]), manifests[name], OCI_MANIFEST)
    for tag, name in (("dev-1", "D"), ("prod-1", "P"), ("dev-2", "M"), ("prod-2", "M")):
        await _put(client, tag, manifests[name], OCI_MANIFEST)
    await _put(client, "dev-idx", manifests["I"], OCI_INDEX)
    client.headers.pop("Authorization")
    ref = {name: digest_of(body) for name, body in manifests.items()}
    for seed in ("d", "c", "p", "s", "shared", "o"):
        ref[f"L{seed}"] = digest_of(_layer(seed))
    ref["absent"] = digest_of(b"never pushed")
    body = {
        "new-1": image_manifest(_config("n1"), [_layer("n1")]),
        "new-2": image_manifest(_config("n2"), [_layer("n2")]),
        "new-3": image_manifest(_config("n3"), [_layer("n3")]),
        "steal": image_manifest(_config("p"), [_layer("sp")]),
        "sign-dev": _referrer(manifests["D"], "n1"),
        "sign-prod": _referrer(manifests["P"], "n2"),
    }
    ref |= {f"digest-{name}": digest_of(data) for name, data in body.items()}
    return Content(ref, body, admin)


async def _grant(client: httpx.AsyncClient, who: str, repo: str, role: str) -> None:
    tags = None if who == "user:olga" and repo == APP else ["dev-*"]
    if repo == OTHER:
        tags = None
    await services_of(client).auth.admin.add_grant(
        ROOT,
        principal=who,
        organization="acme",
        repository=repo,
        role=role,
        tags=tags,
        client="t",
    )


async def _user(client: httpx.AsyncClient, name: str, role: str, other: bool) -> str:
    admin = services_of(client).auth.admin
    password = f"{name}-password-1"
    await admin.create_user(ROOT, name, password, client="t")
    await _grant(client, f"user:{name}", APP, role)
    if other:
        await _grant(client, f"user:{name}", OTHER, "pusher")
    return await token(client, *SCOPES, auth=(name, password))


async def _pull_token(client: httpx.AsyncClient) -> str:
    created = await services_of(client).auth.admin.create_pull_token(
        ROOT, "acme", description="ci", repository=APP, tags=["dev-*"], client="t"
    )
    return await token(client, *SCOPES, auth=("any", created.secret))


async def _oidc(client: httpx.AsyncClient, issuer: OidcIssuer) -> str:
    await services_of(client).auth.admin.create_oidc_identity(
        ROOT,
        name="acme-ci",
        issuer=issuer.url,
        audience="cargohold",
        subject=CI_SUBJECT,
        claims=None,
        client="t",
    )
    await _grant(client, "oidc:acme-ci", APP, "pusher")
    await _grant(client, "oidc:acme-ci", OTHER, "pusher")
    return await token(
        client, *SCOPES, auth=("acme-ci", issuer.mint(CI_SUBJECT, "cargohold"))
    )


async def _same(value: str) -> str:
    return value


async def _setup(
    client: httpx.AsyncClient, shape: str, issuer: Callable[[], OidcIssuer]
) -> tuple[Content, dict[str, str]]:
    """Publish the content and return it with the headers ``shape`` sends."""
    content = await _publish(client)
    admin = services_of(client).auth.admin
    await admin.create_organization(ROOT, "acme", client="t")
    await admin.set_repository(
        ROOT, APP, visibility="public", starter_tags=["dev-*"], client="t"
    )
    makers: dict[str, Callable[[], Awaitable[str]]] = {
        "admin": lambda: _same(content.admin["Authorization"].split()[1]),
        "owner": lambda: _user(client, "olga", "owner", other=True),
        "owner-dev": lambda: _user(client, "bob", "owner", other=True),
        "puller-dev": lambda: _user(client, "pete", "puller", other=False),
        "token-dev": lambda: _pull_token(client),
        "oidc-dev": lambda: _oidc(client, issuer()),
        "anon": lambda: token(client, *SCOPES),
    }
    return content, bearer(await makers[shape]())


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # formatted with the content's digests
    expected: tuple[int, ...]  # one status per shape, in SHAPES order
    body: str | None = None  # a manifest of Content.body to PUT
    kept: str | None = None  # after a DELETE: what must exist iff it was refused

    def status_for(self, shape: str) -> int:
        return self.expected[SHAPES.index(shape)]


M, B = f"/v2/{APP}/manifests", f"/v2/{APP}/blobs"
OK = (200,) * 7
OUT = (200, 200, 403, 403, 403, 403, 401)  # outside the tags: only unlimited callers
OUT_BLOB = (200, 200, 404, 403, 403, 404, 401)  # pushers are told "unknown"
PUSH_IN = (201, 201, 201, 401, 401, 201, 401)
PUSH_OUT = (201, 201, 403, 401, 401, 403, 401)
NO_DELETE = (401, 401, 401, 401)  # puller-dev, token-dev, oidc-dev, anon

READS = {
    "GET tag inside": Row("GET", f"{M}/dev-1", OK),
    "GET tag outside": Row("GET", f"{M}/prod-1", OUT),
    "GET absent tag inside": Row("GET", f"{M}/dev-none", (404,) * 7),
    "GET absent tag outside": Row("GET", f"{M}/prod-none", (404, 404, *OUT[2:])),
    "GET digest reachable": Row("GET", M + "/{D}", OK),
    "GET index child": Row("GET", M + "/{C}", OK),
    "GET referrer": Row("GET", M + "/{S}", OK),
    "GET digest outside": Row("GET", M + "/{P}", OUT),
    "GET referrer outside": Row("GET", M + "/{SP}", OUT),
    "GET untagged digest": Row("GET", M + "/{U}", OUT),
    "GET absent digest": Row("GET", M + "/{absent}", (404, 404, *OUT[2:])),
    "HEAD tag inside": Row("HEAD", f"{M}/dev-idx", OK),
    "HEAD tag outside": Row("HEAD", f"{M}/prod-2", OUT),
    "HEAD digest reachable": Row("HEAD", M + "/{I}", OK),
    "HEAD digest outside": Row("HEAD", M + "/{P}", OUT),
    "GET blob reachable": Row("GET", B + "/{Ld}", OK),
    "GET blob of index child": Row("GET", B + "/{Lc}", OK),
    "GET blob of referrer": Row("GET", B + "/{Ls}", OK),
    "GET blob shared in and out": Row("GET", B + "/{Lshared}", OK),
    "GET blob outside": Row("GET", B + "/{Lp}", OUT_BLOB),
    "HEAD blob outside": Row("HEAD", B + "/{Lp}", OUT_BLOB),
    "HEAD blob no manifest uses": Row("HEAD", B + "/{Lo}", OUT_BLOB),
    "HEAD blob absent": Row("HEAD", B + "/{absent}", (404, 404, *OUT_BLOB[2:])),
    "referrers of reachable": Row("GET", f"/v2/{APP}/referrers/" + "{D}", OK),
    "referrers of outside": Row("GET", f"/v2/{APP}/referrers/" + "{P}", OUT),
    "tags/list": Row("GET", f"/v2/{APP}/tags/list", OK),
    "PUT tag inside": Row("PUT", f"{M}/dev-new", PUSH_IN, body="new-1"),
    "PUT tag outside": Row("PUT", f"{M}/prod-new", PUSH_OUT, body="new-2"),
    "PUT by digest": Row("PUT", M + "/{digest-new-3}", PUSH_IN, body="new-3"),
    # Layers are not checked against other tags (shared base layers must push):
    # see docs/security.md, "Tag limits, verb by verb".
    "PUT sharing layers with outside content": Row(
        "PUT", f"{M}/dev-steal", PUSH_IN, body="steal"
    ),
    "PUT referrer of reachable": Row(
        "PUT", M + "/{digest-sign-dev}", PUSH_IN, body="sign-dev"
    ),
    "PUT referrer of outside": Row(
        "PUT", M + "/{digest-sign-prod}", PUSH_OUT, body="sign-prod"
    ),
    "mount reachable": Row(
        "POST",
        f"/v2/{OTHER}/blobs/uploads/?from={APP}&mount=" + "{Ld}",
        (201, 201, 201, 401, 401, 201, 401),
    ),
    "mount outside": Row(
        "POST",
        f"/v2/{OTHER}/blobs/uploads/?from={APP}&mount=" + "{Lp}",
        (201, 201, 202, 401, 401, 202, 401),
    ),
    "mount without from": Row(
        "POST",
        f"/v2/{OTHER}/blobs/uploads/?mount=" + "{Ld}",
        (201, 202, 202, 401, 401, 202, 401),
    ),
    "upload": Row(
        "POST", f"/v2/{APP}/blobs/uploads/", (202, 202, 202, 401, 401, 202, 401)
    ),
}

DELETES = {
    "DELETE tag inside": Row(
        "DELETE", f"{M}/dev-1", (202, 202, 202, *NO_DELETE), kept=f"{M}/dev-1"
    ),
    "DELETE tag outside": Row(
        "DELETE", f"{M}/prod-1", (202, 202, 403, *NO_DELETE), kept=f"{M}/prod-1"
    ),
    "DELETE absent tag outside": Row(
        "DELETE", f"{M}/prod-none", (404, 404, 403, *NO_DELETE)
    ),
    "DELETE digest reachable": Row(
        "DELETE", M + "/{D}", (202, 202, 202, *NO_DELETE), kept=f"{M}/dev-1"
    ),
    "DELETE index child": Row(
        "DELETE", M + "/{C}", (202, 202, 202, *NO_DELETE), kept=M + "/{C}"
    ),
    "DELETE referrer": Row(
        "DELETE", M + "/{S}", (202, 202, 202, *NO_DELETE), kept=M + "/{S}"
    ),
    "DELETE digest outside": Row(
        "DELETE", M + "/{P}", (202, 202, 403, *NO_DELETE), kept=f"{M}/prod-1"
    ),
    "DELETE digest tagged in and out": Row(
        "DELETE", M + "/{M}", (202, 202, 403, *NO_DELETE), kept=f"{M}/prod-2"
    ),
    "DELETE untagged digest": Row(
        "DELETE", M + "/{U}", (202, 202, 403, *NO_DELETE), kept=M + "/{U}"
    ),
    "DELETE blob reachable": Row(
        "DELETE", B + "/{Ld}", (202, 202, 202, *NO_DELETE), kept=B + "/{Ld}"
    ),
    "DELETE blob shared in and out": Row(
        "DELETE", B + "/{Lshared}", (202, 202, 403, *NO_DELETE), kept=B + "/{Lshared}"
    ),
    "DELETE blob outside": Row(
        "DELETE", B + "/{Lp}", (202, 202, 403, *NO_DELETE), kept=B + "/{Lp}"
    ),
    "DELETE blob no manifest uses": Row(
        "DELETE", B + "/{Lo}", (202, 202, 403, *NO_DELETE), kept=B + "/{Lo}"
    ),
}


@pytest.fixture
def oidc_issuer():
    with OidcIssuer() as running:
        yield running


def _issuer(request: pytest.FixtureRequest) -> Callable[[], OidcIssuer]:
    """The OIDC issuer, started only for the shape that needs it."""
    return lambda: request.getfixturevalue("oidc_issuer")


async def _send(
    client: httpx.AsyncClient, row: Row, content: Content, headers: dict[str, str]
) -> httpx.Response:
    extra: dict[str, Any] = {}
    if row.body is not None:
        extra["content"] = content.body[row.body]
        headers = headers | {"Content-Type": OCI_MANIFEST}
    return await client.request(
        row.method, row.path.format(**content.ref), headers=headers, **extra
    )


def _outcome(response: httpx.Response) -> int | str:
    """The status, or what is wrong with a refusal's form."""
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        return "401 without a challenge"
    head = response.request.method == "HEAD"
    if (
        response.status_code == 403
        and not head
        and response.json()["errors"][0]["code"] != "DENIED"
    ):
        return "403 but not DENIED"
    return response.status_code


async def _exists(client: httpx.AsyncClient, path: str, content: Content) -> bool:
    response = await client.head(path.format(**content.ref), headers=content.admin)
    assert response.status_code in {200, 404}, response.text
    return response.status_code == 200


@pytest.mark.parametrize("shape", SHAPES)
async def test_every_verb_and_reference(
    auth_client: httpx.AsyncClient, shape: str, request: pytest.FixtureRequest
) -> None:
    content, headers = await _setup(auth_client, shape, _issuer(request))
    tags = await auth_client.get(f"/v2/{APP}/tags/list", headers=headers)
    visible = ["dev-1", "dev-2", "dev-idx"]
    if shape in {"admin", "owner"}:
        visible = [*visible, "prod-1", "prod-2"]
    assert tags.json()["tags"] == sorted(visible)
    rows = READS if shape in DELETERS else READS | DELETES
    got = {
        name: _outcome(await _send(auth_client, row, content, headers))
        for name, row in rows.items()
    }
    assert got == {name: row.status_for(shape) for name, row in rows.items()}
    for row in rows.values():
        if row.kept is not None:  # refused deletes changed nothing
            assert await _exists(auth_client, row.kept, content), row


# The administrator deletes like the unlimited owner: one unlimited shape is enough.
@pytest.mark.parametrize("shape", ["owner", "owner-dev"])
@pytest.mark.parametrize("name", DELETES)
async def test_deletes(
    auth_client: httpx.AsyncClient,
    shape: str,
    name: str,
    request: pytest.FixtureRequest,
) -> None:
    row = DELETES[name]
    content, headers = await _setup(auth_client, shape, _issuer(request))
    assert _outcome(await _send(auth_client, row, content, headers)) == row.status_for(
        shape
    )
    if row.kept is not None:
        refused = row.status_for(shape) != 202
        assert await _exists(auth_client, row.kept, content) is refused


async def test_issue_reproduction(auth_client: httpx.AsyncClient) -> None:
    """grants add acme user:bob acme/app owner --tag 'dev-*'; DELETE prod-1."""
    content, bob = await _setup(auth_client, "owner-dev", _no_issuer)
    prod = f"{M}/prod-1"
    assert (await auth_client.get(prod, headers=bob)).status_code == 403
    assert (await auth_client.delete(prod, headers=bob)).status_code == 403
    assert await _exists(auth_client, prod, content)
    by_digest = f"{M}/{content.ref['P']}"
    assert (await auth_client.delete(by_digest, headers=bob)).status_code == 403
    assert await _exists(auth_client, prod, content)


async def test_pushed_content_is_readable_at_once(
    auth_client: httpx.AsyncClient,
) -> None:
    """The read cache may say yes, never a stale no: push, then pull straight away."""
    content, bob = await _setup(auth_client, "owner-dev", _no_issuer)
    layer = f"{B}/{digest_of(_layer('n1'))}"
    assert (await auth_client.head(layer, headers=bob)).status_code == 404
    pushed = await auth_client.put(
        f"{M}/dev-9",
        content=content.body["new-1"],
        headers=bob | {"Content-Type": OCI_MANIFEST},
    )
    assert pushed.status_code == 201
    assert (await auth_client.head(layer, headers=bob)).status_code == 200


def _no_issuer() -> OidcIssuer:
    raise AssertionError


async def test_delete_decides_on_current_tags_not_a_cached_view(
    auth_client: httpx.AsyncClient,
) -> None:
    """A read caches what the tags reach; a delete must not trust it after a retag."""
    content, bob = await _setup(auth_client, "owner-dev", _no_issuer)
    admin = content.admin
    # dev-1 reaches D: bob reads it (caching the view), then the tag moves to prod-3.
    assert (await auth_client.get(f"{M}/{content.ref['D']}", headers=bob)).is_success
    manifest = (await auth_client.get(f"{M}/dev-1", headers=admin)).content
    moved = await auth_client.put(
        f"{M}/prod-3", content=manifest, headers=admin | {"Content-Type": OCI_MANIFEST}
    )
    assert moved.status_code == 201
    assert (await auth_client.delete(f"{M}/dev-1", headers=admin)).status_code == 202
    refused = await auth_client.delete(f"{M}/{content.ref['D']}", headers=bob)
    assert refused.status_code == 403
    assert await _exists(auth_client, f"{M}/prod-3", content)
    # The same without another tag: D is now reachable from no tag of bob's.
    assert (await auth_client.delete(f"{M}/prod-3", headers=admin)).status_code == 202
    refused = await auth_client.delete(f"{M}/{content.ref['D']}", headers=bob)
    assert refused.status_code == 403


async def _limited_owner(
    client: httpx.AsyncClient, content: Content, *, unlimited_puller: bool
) -> dict[str, str]:
    """carol: owner of acme/app on ``dev-*``, maybe puller of acme/* on every tag."""
    admin = services_of(client).auth.admin
    await admin.create_user(ROOT, "carol", "carol-password-1", client="t")
    grants: list[tuple[str, str, list[str] | None]] = [(APP, "owner", ["dev-*"])]
    if unlimited_puller:
        grants.append(("acme/*", "puller", None))
    for repository, role, tags in grants:
        await admin.add_grant(
            ROOT,
            principal="user:carol",
            organization="acme",
            repository=repository,
            role=role,
            tags=tags,
            client="t",
        )
    return bearer(await token(client, *SCOPES, auth=("carol", "carol-password-1")))


@pytest.mark.parametrize("unlimited_puller", [False, True])
async def test_a_wider_pull_limit_does_not_widen_writes(
    auth_client: httpx.AsyncClient, unlimited_puller: bool
) -> None:
    """Starter tags, or a puller grant on every tag, widen reads only.

    The repository is public with the starter tag ``prod-1`` (or carol may pull every
    tag): carol reads ``prod-1`` with the same token that pushes, but may neither
    overwrite it nor delete it, nor delete what only it reaches.
    """
    content, _ = await _setup(auth_client, "admin", _no_issuer)
    await services_of(auth_client).auth.admin.set_repository(
        ROOT, APP, visibility="public", starter_tags=["prod-1"], client="t"
    )
    carol = await _limited_owner(
        auth_client, content, unlimited_puller=unlimited_puller
    )
    assert (await auth_client.get(f"{M}/prod-1", headers=carol)).status_code == 200
    overwrite = await auth_client.put(
        f"{M}/prod-1",
        content=content.body["new-1"],
        headers=carol | {"Content-Type": OCI_MANIFEST},
    )
    assert overwrite.status_code == 403, overwrite.text
    assert (await auth_client.delete(f"{M}/prod-1", headers=carol)).status_code == 403
    by_digest = f"{M}/{content.ref['P']}"
    assert (await auth_client.delete(by_digest, headers=carol)).status_code == 403
    assert await _exists(auth_client, f"{M}/prod-1", content)
    # Within her own tags she still pushes and deletes.
    pushed = await auth_client.put(
        f"{M}/dev-9",
        content=content.body["new-1"],
        headers=carol | {"Content-Type": OCI_MANIFEST},
    )
    assert pushed.status_code == 201, pushed.text
    assert (await auth_client.delete(f"{M}/dev-9", headers=carol)).status_code == 202
