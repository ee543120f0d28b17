"""The web catalog over HTTP with token auth: what anonymous visitors and signed-in
users see, sign-in, sessions and CSRF. A private repository's name appears nowhere
for someone who may not pull from it."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.apptypes import MakeClient
from tests.integration.authhelpers import (
    ADMIN,
    ROOT,
    as_user,
    services_of,
    token_auth_client,
)
from tests.integration.helpers import push_image

pytestmark = pytest.mark.anyio

PRIVATE = "acme/secret-service"  # private
PUBLIC = "acme/public-app"
HIDDEN_ORG = "hiddenco/internal"  # private, the org's only repository
PASSWORD = "paula-password-123"  # noqa: S105 - a test credential


async def _registry(
    make_client: MakeClient, base_url: str = "http://registry.test"
) -> httpx.AsyncClient:
    client = await token_auth_client(make_client)
    client.base_url = httpx.URL(base_url)
    admin = services_of(client).auth.admin
    await admin.create_organization(ROOT, "acme", client="test")
    await admin.create_organization(ROOT, "hiddenco", client="test")
    await admin.create_user(ROOT, "paula", PASSWORD, client="test")
    await admin.set_member(ROOT, "acme", "paula", "puller", client="test")
    for repo, tags in (
        (PUBLIC, ("latest", "prod-1")),
        (PRIVATE, ("latest",)),
        (HIDDEN_ORG, ("latest",)),
    ):
        headers = await as_user(client, repo, "pull,push", auth=ADMIN)
        client.headers.update(headers)
        for tag in tags:
            await push_image(client, repo, tag, seed=f"{repo}-{tag}")
        del client.headers["Authorization"]
    await admin.set_repository(
        ROOT, PUBLIC, visibility="public", starter_tags=None, client="test"
    )
    return client


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def _sign_in(
    client: httpx.AsyncClient, user: str, password: str
) -> httpx.Response:
    form = await client.get("/signin")
    assert form.status_code == 200
    return await client.post(
        "/signin", data={"csrf": _csrf(form), "username": user, "password": password}
    )


def _without_values(page: httpx.Response) -> str:
    return re.sub(r'value="[^"]*"', 'value=""', page.text)


async def test_anonymous_sees_public_repositories_and_starter_tags_only(
    make_client: MakeClient,
) -> None:
    client = await _registry(make_client)
    home = await client.get("/")
    assert home.status_code == 200
    assert PUBLIC in home.text
    assert "hiddenco" not in home.text
    assert "secret" not in home.text
    assert "csp" not in home.text
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert home.headers["cache-control"] == "private, no-store"
    for query in ("secret", "acme/", "hidden", "internal", "s"):
        found = await client.get("/", params={"q": query})
        assert found.status_code == 200
        assert "secret-service" not in found.text
        assert "hiddenco/" not in found.text.replace(f"“{query}”", "")
    repo = await client.get(f"/r/{PUBLIC}")
    assert repo.status_code == 200
    assert ">latest<" in repo.text
    assert "prod-1" not in repo.text  # not a starter tag
    digest = re.search(
        r"podman pull \S+/acme/public-app@(sha256:[0-9a-f]{64})", repo.text
    )
    assert digest, repo.text
    image = await client.get(f"/r/{PUBLIC}@{digest.group(1)}")
    assert image.status_code == 200
    assert digest.group(1) in image.text

    # The private repository answers exactly what a missing name answers.
    missing = await client.get("/r/acme/no-such-thing")
    for path in (
        f"/r/{PRIVATE}",
        f"/r/{HIDDEN_ORG}",
        f"/r/{PRIVATE}@{digest.group(1)}",
        f"/r/{PRIVATE}?tag=latest",
    ):
        refused = await client.get(path)
        assert refused.status_code == 404
        assert refused.text == missing.text
        assert "secret" not in refused.text
        assert "hiddenco" not in refused.text
    # The production tag of the public repository is not reachable by its digest page.
    prod_digest = await services_of(client).meta.manifests.by_tag(PUBLIC, "prod-1")
    assert prod_digest is not None
    hidden = await client.get(f"/r/{PUBLIC}@{prod_digest.digest}")
    assert hidden.status_code == 404


async def test_signed_in_member_sees_what_it_may_pull(make_client: MakeClient) -> None:
    client = await _registry(make_client)
    signed = await _sign_in(client, "paula", PASSWORD)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "cargohold_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP
    home = await client.get("/")
    assert PRIVATE in home.text
    assert PUBLIC in home.text
    assert "hiddenco" not in home.text  # not a member there
    repo = await client.get(f"/r/{PUBLIC}")
    assert "prod-1" in repo.text  # a member pulls every tag
    assert (await client.get(f"/r/{PRIVATE}")).status_code == 200
    assert (await client.get(f"/r/{HIDDEN_ORG}")).status_code == 404

    # Sign out needs the session's form token.
    forged = await client.post("/signout", data={"csrf": "nope"})
    assert forged.status_code == 403
    session_id = client.cookies["cargohold_session"]
    token = _csrf(await client.get("/"))
    out = await client.post("/signout", data={"csrf": token})
    assert out.status_code == 303
    # The old cookie, replayed, signs nobody in.
    client.cookies.set("cargohold_session", session_id)
    assert PRIVATE not in (await client.get("/")).text


async def test_wrong_password_and_forged_forms_are_refused(
    make_client: MakeClient,
) -> None:
    client = await _registry(make_client)
    wrong = await _sign_in(client, "paula", "not-her-password")
    nobody = await _sign_in(client, "nobody-here", "not-a-password")
    assert wrong.status_code == nobody.status_code == 401
    # One message, no user enumeration.
    assert "Wrong username or password." in wrong.text
    assert _without_values(wrong) == _without_values(nobody)
    assert "cargohold_session" not in client.cookies
    # No token, a wrong token, or another origin: refused before the password.
    form = await client.get("/signin")
    no_token = await client.post(
        "/signin", data={"username": "paula", "password": PASSWORD}
    )
    assert no_token.status_code == 403
    other_site = await client.post(
        "/signin",
        data={"csrf": _csrf(form), "username": "paula", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert "cargohold_session" not in client.cookies
    assert (await _sign_in(client, "pa\x00ula", PASSWORD)).status_code == 401
    # A pull token is for clients, not for signing in.
    admin = services_of(client).auth.admin
    created = await admin.create_pull_token(
        ROOT, "acme", description="ci", client="test"
    )
    assert (await _sign_in(client, "ci", created.secret)).status_code == 401


async def test_sign_in_is_throttled_like_token_logins(make_client: MakeClient) -> None:
    client = await _registry(make_client)
    answers = [
        (await _sign_in(client, "paula", f"guess-{n}")).status_code for n in range(6)
    ]
    assert answers == [401] * 5 + [429]
    throttled = await _sign_in(client, "paula", PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.text
    assert "cargohold_session" not in client.cookies


async def test_deleting_the_user_ends_the_session(make_client: MakeClient) -> None:
    client = await _registry(make_client)
    assert (await _sign_in(client, "paula", PASSWORD)).status_code == 303
    assert PRIVATE in (await client.get("/")).text
    await services_of(client).auth.admin.delete_user(ROOT, "paula", client="test")
    home = await client.get("/")
    assert PRIVATE not in home.text
    assert 'href="/signin"' in home.text


async def test_a_new_password_ends_the_session(make_client: MakeClient) -> None:
    client = await _registry(make_client)
    assert (await _sign_in(client, "paula", PASSWORD)).status_code == 303
    assert PRIVATE in (await client.get("/")).text
    await services_of(client).auth.admin.set_password(
        ROOT, "paula", "a-new-password-456", client="test"
    )
    assert PRIVATE not in (await client.get("/")).text


async def test_session_cookie_is_secure_over_tls(make_client: MakeClient) -> None:
    client = await _registry(make_client, "https://registry.test")
    signed = await _sign_in(client, "paula", PASSWORD)
    assert signed.status_code == 303
    assert "Secure" in signed.headers["set-cookie"]


async def test_an_index_shows_its_platforms(make_client: MakeClient) -> None:
    client = await _registry(make_client)
    repo = "acme/multi"
    client.headers.update(await as_user(client, repo, "pull,push", auth=ADMIN))
    children = []
    for arch in ("amd64", "arm64"):
        digest, manifest = await push_image(client, repo, f"only-{arch}", seed=arch)
        children.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": len(manifest),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": children,
        }
    ).encode()
    put = await client.put(
        f"/v2/{repo}/manifests/latest",
        content=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert put.status_code == 201, put.text
    del client.headers["Authorization"]
    assert (await _sign_in(client, "paula", PASSWORD)).status_code == 303
    page = await client.get(f"/r/{repo}", params={"tag": "latest"})
    assert "linux/amd64, linux/arm64" in page.text
    assert put.headers["Docker-Content-Digest"] in page.text  # pinned pull commands
    image = await client.get(f"/r/{repo}@{put.headers['Docker-Content-Digest']}")
    assert image.status_code == 200
    for child in children:
        assert f'href="/r/{repo}@{child["digest"]}"' in image.text
    assert "linux/arm64" in image.text


async def test_paging_and_bad_input(make_client: MakeClient) -> None:
    client = await _registry(make_client)
    admin = services_of(client).auth.admin
    headers = await as_user(client, "acme/*", "pull,push", auth=ADMIN)
    for n in range(3):
        repo = f"acme/more-{n}"
        client.headers.update(await as_user(client, repo, "pull,push", auth=ADMIN))
        await push_image(client, repo, "latest", seed=repo)
        await admin.set_repository(
            ROOT, repo, visibility="public", starter_tags=None, client="test"
        )
    del headers
    client.headers.pop("Authorization", None)
    catalog = services_of(client).catalog
    from cargohold.auth.policy import ANONYMOUS

    first = await catalog.repositories(ANONYMOUS, limit=2)
    assert [r.name for r in first.items] == ["acme/more-0", "acme/more-1"]
    second = await catalog.repositories(ANONYMOUS, after=first.next_after, limit=2)
    assert [r.name for r in second.items] == ["acme/more-2", PUBLIC]
    assert second.next_after is None
    home = await client.get("/")
    assert 'href="/?org=acme"' in home.text
    acme = await client.get("/", params={"org": "acme", "q": "more"})
    assert [f"acme/more-{n}" in acme.text for n in range(3)] == [True] * 3
    assert PUBLIC not in acme.text
    assert (await client.get("/", params={"org": "hiddenco"})).text.count("/r/") == 0
    for path in (
        "/?q=%00%ff",
        "/?after=%00",
        "/?q=" + "a" * 5000,
        "/r/UPPER",
        "/r/a@b",
        "/r/acme/public-app@sha256:zz",
        "/static/nope.js",
        "/r/acme/public-app?tag=%00",
    ):
        answer = await client.get(path)
        assert answer.status_code < 500, path
    oversized = await client.post(
        "/signin",
        content=b"x" * 10_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert oversized.status_code == 403
    for body in (b"a=1&" * 20, b"\xff\xfe=1", b"csrf=%ff&username=%00"):
        odd = await client.post(
            "/signin",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert odd.status_code == 403, body
