"""Docker token auth: challenges, the token endpoint, and token verification."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest

from cargohold.auth import keys
from cargohold.auth.keys import KeySet
from cargohold.auth.policy import ANONYMOUS
from cargohold.auth.scopes import Access
from cargohold.auth.tokens import TokenIssuer
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
from tests.integration.helpers import assert_error, push_image

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(auth_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return auth_client


async def test_v2_challenges_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="http://registry.test/token",service="cargohold"'
    )
    anonymous = await token(client)
    assert (await client.get("/v2/", headers=bearer(anonymous))).status_code == 200


async def test_challenge_names_the_scope_needed(client: httpx.AsyncClient) -> None:
    pull = await client.get("/v2/acme/app/manifests/latest")
    assert 'scope="repository:acme/app:pull"' in pull.headers["WWW-Authenticate"]
    push = await client.post("/v2/acme/app/blobs/uploads/")
    assert 'scope="repository:acme/app:pull,push"' in push.headers["WWW-Authenticate"]
    delete = await client.delete("/v2/acme/app/manifests/latest")
    assert 'scope="repository:acme/app:delete"' in delete.headers["WWW-Authenticate"]
    catalog = await client.get("/v2/_catalog")
    assert 'scope="registry:catalog:*"' in catalog.headers["WWW-Authenticate"]


async def test_admin_pushes_and_pulls(client: httpx.AsyncClient) -> None:
    headers = await as_user(client, "acme/app", "pull,push", auth=ADMIN)
    client.headers.update(headers)
    digest, manifest = await push_image(client, "acme/app", "1.0")
    got = await client.get(f"/v2/acme/app/manifests/{digest}")
    assert got.content == manifest


async def test_token_response_shape(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/token",
        params={"service": "cargohold", "scope": "repository:acme/app:pull,push"},
        auth=ADMIN,
    )
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    assert response.headers["Cache-Control"] == "no-store"
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == "user:root"
    assert claims["aud"] == "cargohold"
    assert claims["access"] == [
        {"type": "repository", "name": "acme/app", "actions": ["pull", "push"]}
    ]
    assert claims["exp"] - claims["iat"] == 300
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256"
    assert header["kid"] in {
        k["kid"] for k in (await client.get("/token/jwks")).json()["keys"]
    }


async def test_several_scopes_and_unknown_service(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/token",
        params=[
            ("service", "cargohold"),
            ("scope", "repository:a/b:pull"),
            ("scope", "repository:c/d:push registry:catalog:*"),
        ],
        auth=ADMIN,
    )
    access = jwt.decode(response.json()["token"], options={"verify_signature": False})[
        "access"
    ]
    assert [a["name"] for a in access] == ["a/b", "c/d", "catalog"]
    wrong = await client.get("/token", params={"service": "elsewhere"})
    assert wrong.status_code == 400


async def test_wrong_password_is_401_and_audited(client: httpx.AsyncClient) -> None:
    response = await client.get("/token", auth=("root", "wrong"))
    assert_error(response, 401, "UNAUTHORIZED")
    unknown = await client.get("/token", auth=("nobody", "wrong"))
    assert unknown.status_code == 401
    assert unknown.json() == response.json()  # no user enumeration
    events = await services_of(client).auth.admin.audit_events(ROOT)
    failed = [e for e in events if e.action == "login" and e.outcome == "failed"]
    assert {e.actor for e in failed} == {"root", "nobody"}
    assert all(e.client == "127.0.0.1" for e in failed)


async def test_failed_logins_are_throttled_per_identity(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(5):
        assert (await client.get("/token", auth=("root", "nope"))).status_code == 401
    throttled = await client.get("/token", auth=ADMIN)
    assert_error(throttled, 429, "TOOMANYREQUESTS")
    assert int(throttled.headers["Retry-After"]) > 0


async def test_failed_logins_are_throttled_per_client(
    make_client: MakeClient,
) -> None:
    client = await make_client(
        auth={
            "mode": "token",
            "max_failures_per_client": 3,
            "max_failures_per_identity": 100,
        }
    )
    for name in ("a", "b", "c"):
        assert (await client.get("/token", auth=(name, "x"))).status_code == 401
    assert (await client.get("/token", auth=("d", "x"))).status_code == 429


async def test_refresh_tokens_expire(make_client: MakeClient) -> None:
    clock = ManualClock()
    client = await token_auth_client(
        make_client, clock=clock, auth={"refresh_token_ttl_days": 1}
    )
    response = await client.get(
        "/token", params={"service": "cargohold", "offline_token": "true"}, auth=ADMIN
    )
    form = {
        "grant_type": "refresh_token",
        "refresh_token": response.json()["refresh_token"],
    }
    clock.advance(86400 - 1)
    assert (await client.post("/token", data=form)).status_code == 200
    clock.advance(1)
    assert_error(await client.post("/token", data=form), 401, "UNAUTHORIZED")


async def test_refresh_tokens(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/token", params={"service": "cargohold", "offline_token": "true"}, auth=ADMIN
    )
    refresh = response.json()["refresh_token"]
    assert refresh.startswith("chr_")
    renewed = await client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "cargohold",
            "scope": "repository:acme/app:pull",
            "client_id": "test",
        },
    )
    assert renewed.status_code == 200
    body = renewed.json()
    assert body["refresh_token"] == refresh
    assert body["scope"] == "repository:acme/app:pull"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "user:root"
    forged = await client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh[:-2] + "xx"},
    )
    assert_error(forged, 401, "UNAUTHORIZED")


async def test_oauth_password_grant(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token",
        data={
            "grant_type": "password",
            "username": ADMIN[0],
            "password": ADMIN[1],
            "service": "cargohold",
            "access_type": "offline",
            "client_id": "docker",
        },
    )
    assert response.status_code == 200
    assert response.json()["refresh_token"].startswith("chr_")
    bad = await client.post("/token", data={"grant_type": "client_credentials"})
    assert bad.status_code == 400


def _issuer(
    client: httpx.AsyncClient,
    *,
    issuer: str = "cargohold",
    service: str = "cargohold",
) -> TokenIssuer:
    auth = services_of(client).auth
    return TokenIssuer(auth.keyring.current, issuer=issuer, service=service, ttl=300)


async def _pull_target(client: httpx.AsyncClient) -> str:
    client.headers.update(await as_user(client, "acme/app", "pull,push", auth=ADMIN))
    await push_image(client, "acme/app", "latest")
    client.headers.pop("Authorization")
    return "/v2/acme/app/manifests/latest"


ACCESS = [Access("repository", "acme/app", ("pull",))]


async def test_expired_token_is_refused(client: httpx.AsyncClient) -> None:
    path = await _pull_target(client)
    old, _ = _issuer(client).issue(ROOT, ACCESS, now=time.time() - 3600)
    response = await client.get(path, headers=bearer(old))
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    fresh, _ = _issuer(client).issue(ROOT, ACCESS)
    assert (await client.get(path, headers=bearer(fresh))).status_code == 200


async def test_tampered_token_is_refused(client: httpx.AsyncClient) -> None:
    path = await _pull_target(client)
    good, _ = _issuer(client).issue(ANONYMOUS, [])
    head, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["access"] = [a.to_claim() for a in ACCESS]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = await client.get(path, headers=bearer(f"{head}.{forged}.{signature}"))
    assert_error(response, 401, "UNAUTHORIZED")


async def test_unknown_kid_is_refused(client: httpx.AsyncClient) -> None:
    path = await _pull_target(client)
    foreign = keys.generate("ES256", time.time())
    issuer = TokenIssuer(
        lambda: KeySet(foreign, {foreign.kid: foreign}),
        issuer="cargohold",
        service="cargohold",
        ttl=300,
    )
    forged, _ = issuer.issue(ROOT, ACCESS)
    assert_error(await client.get(path, headers=bearer(forged)), 401, "UNAUTHORIZED")
    # The right kid but the wrong key: the signature does not verify.
    real_kid = services_of(client).auth.keyring.current().active.kid
    impostor = keys.SigningKey(real_kid, "ES256", foreign.private_key, time.time())
    issuer = TokenIssuer(
        lambda: KeySet(impostor, {real_kid: impostor}),
        issuer="cargohold",
        service="cargohold",
        ttl=300,
    )
    forged, _ = issuer.issue(ROOT, ACCESS)
    assert_error(await client.get(path, headers=bearer(forged)), 401, "UNAUTHORIZED")


async def test_wrong_audience_or_issuer_is_refused(client: httpx.AsyncClient) -> None:
    path = await _pull_target(client)
    for issuer in (
        _issuer(client, service="other-registry"),
        _issuer(client, issuer="someone-else"),
    ):
        forged, _ = issuer.issue(ROOT, ACCESS)
        assert_error(
            await client.get(path, headers=bearer(forged)), 401, "UNAUTHORIZED"
        )


async def test_alg_none_is_refused(client: httpx.AsyncClient) -> None:
    path = await _pull_target(client)
    kid = services_of(client).auth.keyring.current().active.kid
    claims = {
        "iss": "cargohold",
        "sub": "user:root",
        "aud": "cargohold",
        "iat": int(time.time()),
        "nbf": int(time.time()),
        "exp": int(time.time()) + 300,
        "admin": True,
        "access": [a.to_claim() for a in ACCESS],
    }
    # PyJWT takes "" as the absent key of alg "none".
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": kid})
    assert_error(await client.get(path, headers=bearer(unsigned)), 401, "UNAUTHORIZED")
    public_pem = services_of(client).auth.keyring.current().active.public_key
    from cryptography.hazmat.primitives import serialization

    pem = public_pem.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = (
        base64.urlsafe_b64encode(
            json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    import hashlib
    import hmac

    mac = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    confused = f"{header}.{body}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert_error(await client.get(path, headers=bearer(confused)), 401, "UNAUTHORIZED")


async def test_token_is_bound_to_repository_and_action(
    client: httpx.AsyncClient,
) -> None:
    await _pull_target(client)
    for_other = await as_user(client, "acme/other", "pull,push", auth=ADMIN)
    response = await client.get("/v2/acme/app/manifests/latest", headers=for_other)
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    pull_only = await as_user(client, "acme/app", "pull", auth=ADMIN)
    assert (
        await client.get("/v2/acme/app/manifests/latest", headers=pull_only)
    ).status_code == 200
    push = await client.post("/v2/acme/app/blobs/uploads/", headers=pull_only)
    assert_error(push, 401, "UNAUTHORIZED")
    delete = await client.delete("/v2/acme/app/manifests/latest", headers=pull_only)
    assert_error(delete, 401, "UNAUTHORIZED")


async def test_key_rotation_keeps_old_tokens_valid(client: httpx.AsyncClient) -> None:
    path = await _pull_target(client)
    auth = services_of(client).auth
    before = await as_user(client, "acme/app", "pull", auth=ADMIN)
    old_kid = auth.keyring.current().active.kid
    new = await auth.keyring.rotate(activate_now=True)
    await auth.keyring.load()
    assert auth.keyring.current().active.kid == new.kid
    kids = {k["kid"] for k in (await client.get("/token/jwks")).json()["keys"]}
    assert kids == {old_kid, new.kid}
    auth.verifier._cache.clear()  # verify from scratch, not from the cache
    assert (await client.get(path, headers=before)).status_code == 200
    after = await as_user(client, "acme/app", "pull", auth=ADMIN)
    assert jwt.get_unverified_header(after["Authorization"][7:])["kid"] == new.kid
    assert (await client.get(path, headers=after)).status_code == 200


async def test_disabled_user_token_stops_working(client: httpx.AsyncClient) -> None:
    path = await _pull_target(client)
    admin = services_of(client).auth.admin
    await admin.create_user(ROOT, "alice", "alice-password-1", client="t")
    await admin.create_organization(ROOT, "acme", client="t")
    await admin.set_member(ROOT, "acme", "alice", "puller", client="t")
    headers = await as_user(
        client, "acme/app", "pull", auth=("alice", "alice-password-1")
    )
    assert (await client.get(path, headers=headers)).status_code == 200
    await admin.delete_user(ROOT, "alice", client="t")
    assert_error(await client.get(path, headers=headers), 401, "UNAUTHORIZED")


async def test_principal_claims_cannot_be_upgraded(client: httpx.AsyncClient) -> None:
    # A token lists only what was granted: an anonymous token for a private repo
    # is empty.
    anonymous = await token(client, "repository:acme/app:pull,push,delete")
    claims = jwt.decode(anonymous, options={"verify_signature": False})
    assert claims["access"] == []
    assert claims["sub"] == "anonymous"


async def test_remembered_login_follows_password_changes(
    client: httpx.AsyncClient,
) -> None:
    admin = services_of(client).auth.admin
    await admin.create_user(ROOT, "erin", "erin-password-1", client="t")
    assert (
        await client.get("/token", auth=("erin", "erin-password-1"))
    ).status_code == 200
    # The second login is answered from the remembered check, and still exact.
    assert (
        await client.get("/token", auth=("erin", "erin-password-1"))
    ).status_code == 200
    wrong = await client.get("/token", auth=("erin", "erin-password-2"))
    assert wrong.status_code == 401
    await admin.set_password(ROOT, "erin", "erin-password-new", client="t")
    old = await client.get("/token", auth=("erin", "erin-password-1"))
    assert old.status_code == 401
    new = await client.get("/token", auth=("erin", "erin-password-new"))
    assert new.status_code == 200


async def test_eddsa_signing_keys(make_client: MakeClient) -> None:
    from cargohold.registry.bootstrap import bootstrap
    from cargohold.settings import AdminSettings

    client = await make_client(auth={"mode": "token", "signing_algorithm": "EdDSA"})
    await bootstrap(
        services_of(client), AdminSettings(user=ADMIN[0], password=ADMIN[1])
    )
    headers = await as_user(client, "acme/app", "pull,push", auth=ADMIN)
    assert jwt.get_unverified_header(headers["Authorization"][7:])["alg"] == "EdDSA"
    client.headers.update(headers)
    digest, manifest = await push_image(client, "acme/app", "1.0")
    assert (await client.get(f"/v2/acme/app/manifests/{digest}")).content == manifest
    jwk = (await client.get("/token/jwks")).json()["keys"][0]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
