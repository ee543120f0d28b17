"""The management API (/api/v1) through the whole app, and its OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from starlette.routing import Route

from cargohold.api.management import build_routes
from cargohold.api.management.body import MAX_BODY
from cargohold.api.management.openapi import document
from cargohold.api.management.routes import ANONYMOUS_READS, OPERATIONS
from tests.integration.authhelpers import ADMIN, as_user, bearer, token
from tests.integration.helpers import assert_error, push_image

pytestmark = pytest.mark.anyio

API = "/api/v1"
PASSWORD = "correct-horse-battery"  # noqa: S105 - a test account
CHALLENGE = 'Basic realm="cargohold"'
DOC = document()


@dataclass
class Caller:
    """Management calls as one identity (a bearer token: one argon2 check in all)."""

    client: httpx.AsyncClient
    headers: dict[str, str]

    async def send(
        self, method: str, path: str, body: Any = None, **params: str | int
    ) -> httpx.Response:
        return await self.client.request(
            method, API + path, json=body, params=params, headers=self.headers
        )

    async def ok(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int = 200,
        **params: str | int,
    ) -> Any:
        response = await self.send(method, path, body, **params)
        assert response.status_code == status, (method, path, response.text)
        return response.json() if response.content else None

    async def refused(
        self, method: str, path: str, body: Any = None, *, status: int, code: str
    ) -> str:
        """The error's detail, after checking status and code."""
        response = await self.send(method, path, body)
        assert_error(response, status, code)
        return str(response.json()["errors"][0].get("detail", ""))


async def login(
    client: httpx.AsyncClient, name: str, password: str = PASSWORD
) -> Caller:
    return Caller(client, bearer(await token(client, auth=(name, password))))


@pytest.fixture
async def client(auth_client: httpx.AsyncClient) -> httpx.AsyncClient:
    return auth_client


@pytest.fixture
async def root(client: httpx.AsyncClient) -> Caller:
    return await login(client, *ADMIN)


async def add_user(root: Caller, name: str) -> None:
    await root.ok("POST", "/users", {"name": name, "password": PASSWORD}, status=201)


async def add_org(root: Caller, name: str) -> None:
    await root.ok("POST", "/orgs", {"name": name}, status=201)


# -- the document ----------------------------------------------------------------------


def _template(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def test_every_route_is_documented_and_every_operation_routed() -> None:
    routes = [route for route in build_routes() if isinstance(route, Route)]
    assert len(routes) == len(build_routes())
    routed = {
        (_template(route.path), method.lower(), route.name)
        for route in routes
        for method in (route.methods or set()) - {"HEAD"}
    }
    documented = {
        (path, method, operation["operationId"])
        for path, item in DOC["paths"].items()
        for method, operation in item.items()
    }
    assert routed == documented


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_document_references_resolve() -> None:
    assert DOC["openapi"].startswith("3.1")
    for ref in _refs(DOC):
        target: Any = DOC
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]


def test_document_schemas_are_valid_json_schemas() -> None:
    assert len(DOC["components"]["schemas"]) > 5  # the loop below checks something
    for schema in DOC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_document_declares_every_path_parameter() -> None:
    declared = {
        (path, parameter["name"])
        for path, item in DOC["paths"].items()
        for operation in item.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    }
    used = {
        (path, name) for path in DOC["paths"] for name in re.findall(r"{(\w+)}", path)
    }
    assert used == declared


async def test_document_is_served_without_credentials(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOC


def conforms(response: httpx.Response, method: str, template: str) -> None:
    """The answer's status is documented for the operation; its body fits the schema."""
    operation = DOC["paths"][template][method.lower()]
    entry = operation["responses"].get(str(response.status_code))
    assert entry is not None, (
        f"{method} {template}: undocumented {response.status_code}"
    )
    if "$ref" in entry:
        entry = DOC["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
    if "content" not in entry:
        assert response.content == b""
        return
    schema = entry["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": DOC["components"]})
    validator.validate(response.json())


async def tour(root: Caller) -> set[str]:  # noqa: PLR0915 - one linear tour
    """Every operation once, as the administrator; returns the operation ids used."""
    used: set[str] = set()

    async def do(
        method: str, template: str, body: Any = None, *, status: int, **values: str
    ) -> Any:
        response = await root.send(method, template.format(**values), body)
        assert response.status_code == status, (method, template, response.text)
        conforms(response, method, template)
        used.add(DOC["paths"][template][method.lower()]["operationId"])
        return response.json() if response.content else None

    # fmt: off
    await do("GET", "/openapi.json", status=200)
    await do("POST", "/orgs", {"name": "acme"}, status=201)
    await do("GET", "/orgs", status=200)
    await do("POST", "/users", {"name": "alice", "password": PASSWORD}, status=201)
    await do("GET", "/users", status=200)
    await do("PUT", "/users/{user}/password", {"password": PASSWORD + "!"}, status=204,
             user="alice")
    await do("PUT", "/orgs/{org}/members/{user}", {"role": "owner"}, status=200,
             org="acme", user="alice")
    grant = await do("POST", "/orgs/{org}/grants", {
        "principal": "user:bob", "repository": "acme/app-*", "role": "pusher",
        "tags": ["v*"]}, status=201, org="acme")
    await do("GET", "/orgs/{org}/grants", status=200, org="acme")
    created = await do("POST", "/orgs/{org}/tokens", {
        "description": "ci", "expires_in_days": 30}, status=201, org="acme")
    await do("GET", "/orgs/{org}/tokens", status=200, org="acme")
    await do("DELETE", "/orgs/{org}/tokens/{token_id}", status=204, org="acme",
             token_id=created["id"])
    await do("DELETE", "/orgs/{org}/grants/{grant_id}", status=204, org="acme",
             grant_id=str(grant["id"]))
    await do("POST", "/oidc-identities", {
        "name": "ci", "issuer": "https://issuer.example", "audience": "cargohold",
        "subject": "repo:acme/*", "claims": {"ref": "refs/heads/main"}}, status=201)
    await do("GET", "/oidc-identities", status=200)
    await do("DELETE", "/oidc-identities/{name}", status=204, name="ci")
    await do("GET", "/repositories/{name}/settings", status=200, name="acme/team/app")
    await do("PUT", "/repositories/{name}/settings", {
        "visibility": "public", "starter_tags": ["stable"]}, status=200,
        name="acme/team/app")
    await do("GET", "/audit", status=200)
    for scope, org in (("/orgs/{org}/webhooks", "acme"), ("/webhooks", "")):
        # .invalid never resolves: the ping's delivery fails without leaving the host.
        hook = await do("POST", scope, {"url": "https://hooks.invalid/x",
                        "events": ["push"]}, status=201, org=org)
        one, hook_id = scope + "/{webhook_id}", hook["id"]
        await do("GET", scope, status=200, org=org)
        await do("GET", one, status=200, org=org, webhook_id=hook_id)
        await do("POST", one + "/test", status=200, org=org, webhook_id=hook_id)
        await do("GET", one + "/deliveries", status=200, org=org, webhook_id=hook_id)
        await do("POST", one + "/rotate", status=200, org=org, webhook_id=hook_id)
        await do("POST", one + "/disable", status=200, org=org, webhook_id=hook_id)
        await do("POST", one + "/enable", status=200, org=org, webhook_id=hook_id)
        await do("DELETE", one, status=204, org=org, webhook_id=hook_id)
    await do("PUT", "/users/{user}/email", {"email": "alice@acme.test"}, status=200,
             user="alice")
    await do("PUT", "/orgs/{org}/contact", {"security_contact": "sec@acme.test"},
             status=200, org="acme")
    root.client.headers.update(
        await as_user(root.client, "acme/app", "pull,push", auth=ADMIN))
    digest, _ = await push_image(root.client, "acme/app", "v1")
    del root.client.headers["Authorization"]
    await do("GET", "/repositories/{name}/tags/{tag}/history", status=200,
             name="acme/app", tag="v1")
    found = await do("GET",
                     "/repositories/{name}/manifests/{reference}/vulnerabilities",
                     status=200, name="acme/app", reference="v1")
    assert (found["digest"], found["described"]) == (digest, False)
    # No outbox worker runs here: not described yet.
    await do("GET", "/repositories/{name}/manifests/{reference}/sbom", status=404,
             name="acme/app", reference=digest)
    meta = await do("GET", "/repositories/{name}/manifests/{reference}/metadata",
                    status=200, name="acme/app", reference="v1")
    assert (meta["digest"], meta["kind"], meta["description"]["state"]) == (
        digest, "image", "pending")
    assert (meta["verified"], meta["signatures"]) == (False, [])
    advisory = {"id": "CH-1", "title": "t", "severity": "low", "state": "current",
                "affected": [{"repository": "acme/app", "tags": ["v*"]}]}
    await do("POST", "/advisories", advisory, status=201)
    await do("PATCH", "/advisories/{advisory}", {"state": "resolved"}, status=200,
             advisory="CH-1")
    await do("GET", "/advisories", status=200)
    shown = await do("GET", "/advisories/{advisory}", status=200, advisory="CH-1")
    assert shown["digests"] == [
        {"repository": "acme/app", "digest": digest, "via_tag": "v1"}]
    await do("GET", "/advisories/{advisory}/revisions", status=200, advisory="CH-1")
    await do("GET", "/advisories/{advisory}/affected", status=200, advisory="CH-1")
    await do("GET", "/pulls", status=200)
    await do("GET", "/me/pulls", status=200)
    me = await do("GET", "/me", status=200)
    assert (me["identity"], me["kind"], me["admin"]) == ("user:root", "user", True)
    await do("GET", "/notices", status=200)
    await do("POST", "/notices/read", status=200)
    await do("POST", "/notices/{notice_id}/read", status=404, notice_id="1")
    await do("GET", "/outbox", status=200)
    await do("POST", "/outbox/{message_id}/retry", status=404, message_id="1")
    incident = await do("POST", "/status/incidents", {
        "name": "Slow pulls", "body": "Looking into it.", "impact": "minor",
        "components": ["blob-storage"]}, status=201)
    await do("GET", "/status/incidents", status=200)
    await do("GET", "/status/incidents/{incident_id}", status=200,
             incident_id=incident["id"])
    resolved = await do("POST", "/status/incidents/{incident_id}/updates", {
        "status": "resolved", "body": "Fixed."}, status=201,
        incident_id=incident["id"])
    assert [u["status"] for u in resolved["updates"]] == ["investigating", "resolved"]
    window = await do("POST", "/status/maintenances", {
        "name": "Database upgrade", "body": "PostgreSQL 17.",
        "scheduled_for": "2030-01-01T01:00:00Z",
        "scheduled_until": "2030-01-01T02:00:00+00:00",
        "components": ["metadata-database"]}, status=201)
    await do("GET", "/status/maintenances", status=200)
    await do("GET", "/status/maintenances/{maintenance_id}", status=200,
             maintenance_id=window["id"])
    await do("POST", "/status/maintenances/{maintenance_id}/updates", {
        "status": "in_progress", "body": "Started."}, status=201,
        maintenance_id=window["id"])
    await do("DELETE", "/orgs/{org}/members/{user}", status=204, org="acme",
             user="alice")
    await do("DELETE", "/users/{user}", status=204, user="alice")
    await do("DELETE", "/orgs/{org}", status=204, org="acme")
    # fmt: on
    return used


async def test_every_operation_answers_as_documented(root: Caller) -> None:
    documented = {
        op["operationId"] for item in DOC["paths"].values() for op in item.values()
    }
    assert await tour(root) == documented


async def test_error_answers_are_documented(root: Caller) -> None:
    response = await root.send("POST", "/orgs", {"name": 1})
    assert response.status_code == 400
    conforms(response, "POST", "/orgs")
    response = await root.send("DELETE", "/users/nobody")
    assert response.status_code == 404
    conforms(response, "DELETE", "/users/{user}")


async def test_every_change_is_audited(root: Caller) -> None:
    await tour(root)
    events = await root.ok("GET", "/audit", actor="user:root")
    assert [e["action"] for e in events if e["action"] != "login"] == [
        "organization.create", "user.create", "user.password", "member.set",
        "grant.add", "pull_token.create", "pull_token.revoke", "grant.remove",
        "oidc.create", "oidc.delete", "repository.settings",
        *["webhook.create", "webhook.rotate", "webhook.disable", "webhook.enable",
          "webhook.delete"] * 2,
        "user.email", "organization.contact", "advisory.publish", "advisory.update",
        "status.incident.create", "status.incident.update",
        "status.maintenance.schedule", "status.maintenance.update",
        "member.remove",
        "user.delete", "organization.delete",
    ]  # fmt: skip
    assert {e["actor"] for e in events} == {"user:root"}
    assert all(e["outcome"] == "ok" and e["client"] for e in events)
    by_action = {e["action"]: e for e in events}
    assert by_action["member.set"]["target"] == "acme:alice"
    assert '"role": "owner"' in by_action["member.set"]["detail"]


async def test_audit_pages_by_id(root: Caller) -> None:
    for name in ("a1", "a2", "a3"):
        await add_org(root, name)
    first = await root.ok("GET", "/audit", limit=2)
    assert len(first) == 2
    rest = await root.ok("GET", "/audit", after=first[-1]["id"])
    assert rest
    ids = [event["id"] for event in first + rest]
    assert ids == sorted(set(ids))


# -- who may ---------------------------------------------------------------------------


def _sample_path(path: str) -> str:
    values = {
        "org": "acme",
        "user": "alice",
        "grant_id": "1",
        "notice_id": "1",
        "message_id": "1",
        "token_id": "x" * 32,
        "webhook_id": "wh_x",
        "tag": "latest",
        "reference": "latest",
        "advisory": "CH-1",
        "incident_id": "nosuchincident",
        "maintenance_id": "nosuchwindow",
        "name": "acme/app" if path.startswith("/repositories") else "ci",
    }
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values[m.group(1)], path)


# Cases run in loops rather than as parameters: each app costs a second to set up.


async def test_credentials_are_required(client: httpx.AsyncClient) -> None:
    for method, path, handler in OPERATIONS:
        response = await client.request(method, API + _sample_path(path), json={})
        if handler.__name__ in ANONYMOUS_READS:
            # Anonymous: what anonymous may pull; here nothing, so "no such".
            assert_error(response, 404, "NOT_FOUND")
            continue
        assert response.status_code == 401, (method, path)
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"] == CHALLENGE


async def test_bad_credentials_are_refused(client: httpx.AsyncClient) -> None:
    for authorization in (
        "Basic !!!", "Basic cm9vdA==", "Bearer not-a-jwt", "Bearer ", "Digest x=1",
    ):  # fmt: skip
        headers = {"Authorization": authorization}
        response = await client.get(f"{API}/orgs", headers=headers)
        assert response.status_code == 401, authorization
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["WWW-Authenticate"] == CHALLENGE


async def test_wrong_password_and_anonymous_tokens_are_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/orgs", auth=("root", "wrong-password-123"))
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    anonymous = Caller(client, bearer(await token(client)))
    await anonymous.refused("GET", "/orgs", status=401, code="UNAUTHORIZED")


async def test_basic_and_bearer_both_authenticate(
    client: httpx.AsyncClient, root: Caller
) -> None:
    await add_org(root, "acme")
    basic = await client.get(f"{API}/orgs", auth=ADMIN)
    assert (
        basic.json()
        == await root.ok("GET", "/orgs")
        == [{"name": "acme", "security_contact": None}]
    )


async def test_a_deleted_users_bearer_stops_working(
    client: httpx.AsyncClient, root: Caller
) -> None:
    await add_user(root, "carol")
    carol = await login(client, "carol")
    await carol.ok("GET", "/orgs")
    await root.ok("DELETE", "/users/carol", status=204)
    await carol.refused("GET", "/orgs", status=401, code="UNAUTHORIZED")


async def test_auth_mode_none_refuses_everything(
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    client = await make_client()  # auth mode "none"
    for method, path, _ in OPERATIONS:
        response = await client.request(
            method, API + _sample_path(path), json={}, auth=ADMIN
        )
        assert_error(response, 403, "DENIED")
        assert "auth mode is 'none'" in response.json()["errors"][0]["detail"]
    assert (await client.get(f"{API}/openapi.json")).status_code == 200


async def test_a_user_without_roles_is_denied(
    client: httpx.AsyncClient, root: Caller
) -> None:
    await add_org(root, "acme")
    for name in ("alice", "bob"):
        await add_user(root, name)
    bob = await login(client, "bob")
    assert await bob.ok("GET", "/orgs") == []
    for method, path, body in [
        ("GET", "/users", None),
        ("POST", "/users", {"name": "eve", "password": PASSWORD}),
        ("DELETE", "/users/alice", None),
        ("PUT", "/users/alice/password", {"password": PASSWORD}),
        ("POST", "/orgs", {"name": "mine"}),
        ("DELETE", "/orgs/acme", None),
        ("PUT", "/orgs/acme/members/bob", {"role": "owner"}),
        ("GET", "/orgs/acme/grants", None),
        ("POST", "/orgs/acme/tokens", {"description": "x"}),
        ("GET", "/orgs/acme/tokens", None),
        ("GET", "/oidc-identities", None),
        ("GET", "/repositories/acme/app/settings", None),
        ("PUT", "/repositories/acme/app/settings", {"visibility": "public"}),
        ("GET", "/audit", None),
    ]:
        await bob.refused(method, path, body, status=403, code="DENIED")
    # Everyone may set their own password.
    await bob.ok("PUT", "/users/bob/password", {"password": PASSWORD + "2"}, status=204)


async def test_an_owner_manages_their_organization_only(
    client: httpx.AsyncClient, root: Caller
) -> None:
    for org in ("acme", "other"):
        await add_org(root, org)
    for name in ("alice", "bob"):
        await add_user(root, name)
    await root.ok("PUT", "/orgs/acme/members/alice", {"role": "owner"})
    alice = await login(client, "alice")

    assert await alice.ok("GET", "/orgs") == [
        {"name": "acme", "security_contact": None}
    ]
    member = await alice.ok("PUT", "/orgs/acme/members/bob", {"role": "pusher"})
    assert (member["principal"], member["repository"]) == ("user:bob", "acme/*")
    created = await alice.ok(
        "POST", "/orgs/acme/tokens", {"description": "ci"}, status=201
    )
    assert len(await alice.ok("GET", "/orgs/acme/tokens")) == 1
    await alice.ok("DELETE", f"/orgs/acme/tokens/{created['id']}", status=204)
    grant = {"principal": "user:bob", "repository": "acme/app", "role": "owner"}
    await alice.ok("POST", "/orgs/acme/grants", grant, status=201)
    await alice.ok("PUT", "/repositories/acme/app/settings", {"visibility": "public"})
    await alice.ok("DELETE", "/orgs/acme/members/bob", status=204)

    for method, path, body in [
        ("PUT", "/orgs/other/members/bob", {"role": "puller"}),
        ("DELETE", "/orgs/other/members/bob", None),
        ("POST", "/orgs/other/tokens", {"description": "ci"}),
        ("GET", "/orgs/other/tokens", None),
        ("GET", "/orgs/other/grants", None),
        ("POST", "/orgs/other/grants", grant | {"repository": "other/*"}),
        ("GET", "/repositories/other/app/settings", None),
        ("POST", "/orgs", {"name": "third"}),
        ("DELETE", "/orgs/acme", None),
        ("GET", "/users", None),
    ]:
        await alice.refused(method, path, body, status=403, code="DENIED")


# -- pull tokens -----------------------------------------------------------------------


async def test_pull_token_secret_is_shown_once_and_revocation_works(
    client: httpx.AsyncClient, root: Caller
) -> None:
    await add_org(root, "acme")
    created = await root.ok(
        "POST",
        "/orgs/acme/tokens",
        {"description": "deploy", "tags": ["v*"]},
        status=201,
    )
    secret = created["secret"]
    prefix = f"chp_{created['id']}_"
    assert secret.startswith(prefix)
    # The random part is token_urlsafe: it may itself hold "_", so cut by the known
    # prefix, never by splitting on a character of its alphabet.
    random_part = secret.removeprefix(prefix)
    assert len(random_part) >= 40
    listed = await root.send("GET", "/orgs/acme/tokens")
    assert random_part not in listed.text
    (entry,) = listed.json()
    assert entry["id"] == created["id"]
    assert "secret" not in entry
    assert "secret_hash" not in entry
    assert entry["revoked_at"] is None

    scope = {"service": "cargohold", "scope": "repository:acme/app:pull,push"}
    granted = await client.get("/token", params=scope, auth=("anyone", secret))
    assert granted.status_code == 200, granted.text
    claims = jwt.decode(granted.json()["token"], options={"verify_signature": False})
    assert claims["sub"] == f"token:{created['id']}"
    assert claims["access"] == [
        {"type": "repository", "name": "acme/app", "actions": ["pull"], "tags": ["v*"]}
    ]

    await root.ok("DELETE", f"/orgs/acme/tokens/{created['id']}", status=204)
    refused = await client.get("/token", params=scope, auth=("anyone", secret))
    assert_error(refused, 401, "UNAUTHORIZED")
    (entry,) = await root.ok("GET", "/orgs/acme/tokens")
    assert entry["revoked_at"] is not None


async def test_a_token_cannot_reach_beyond_its_organization(root: Caller) -> None:
    await add_org(root, "acme")
    for repository in ("*", "other/*", "acme", "acme*/x", "acme/****"):
        body = {"description": "x", "repository": repository}
        detail = await root.refused(
            "POST", "/orgs/acme/tokens", body, status=400, code="INVALID_REQUEST"
        )
        assert "under acme/" in detail
    assert await root.ok("GET", "/orgs/acme/tokens") == []


# -- users, repositories, CI identities ------------------------------------------------


async def test_users_never_show_password_hashes_and_passwords_change(
    client: httpx.AsyncClient, root: Caller
) -> None:
    body = {"name": "carol", "password": PASSWORD, "admin": True}
    assert await root.ok("POST", "/users", body, status=201) == {
        "name": "carol",
        "admin": True,
    }
    listed = await root.send("GET", "/users")
    assert "argon2" not in listed.text
    assert {u["name"]: u["admin"] for u in listed.json()} == {
        "root": True,
        "carol": True,
    }
    new = "another-password-1"
    await root.ok("PUT", "/users/carol/password", {"password": new}, status=204)
    assert_error(
        await client.get("/token", auth=("carol", PASSWORD)), 401, "UNAUTHORIZED"
    )
    assert (await client.get("/token", auth=("carol", new))).is_success


async def test_public_starter_tags_open_anonymous_pulls(
    client: httpx.AsyncClient, root: Caller
) -> None:
    await add_org(root, "acme")
    path = "/repositories/acme/app/settings"
    assert await root.ok("GET", path) == {
        "repository": "acme/app",
        "visibility": "private",
        "starter_tags": None,
        "updated_at": None,
    }
    updated = await root.ok(
        "PUT", path, {"visibility": "public", "starter_tags": ["stable"]}
    )
    assert (updated["visibility"], updated["starter_tags"]) == ("public", ["stable"])
    assert updated["updated_at"] is not None
    again = await root.ok("PUT", path, {})  # absent fields keep their value
    assert (again["visibility"], again["starter_tags"]) == ("public", ["stable"])
    claims = jwt.decode(
        await token(client, "repository:acme/app:pull"),
        options={"verify_signature": False},
    )
    assert claims["access"][0]["tags"] == ["stable"]


async def test_oidc_identities(root: Caller) -> None:
    body = {
        "name": "deploy",
        "issuer": "https://token.actions.example/",
        "audience": "cargohold",
        "subject": "repo:acme/*",
        "claims": {"workflow": "release*"},
    }
    assert await root.ok("POST", "/oidc-identities", body, status=201) == {
        "name": "deploy"
    }
    (identity,) = await root.ok("GET", "/oidc-identities")
    assert identity["issuer"] == "https://token.actions.example"
    assert identity["claims"] == {"workflow": "release*"}
    await root.refused("POST", "/oidc-identities", body, status=409, code="CONFLICT")


# -- validation, 404 and 409 -----------------------------------------------------------

GRANT = {"principal": "user:bob", "repository": "acme/*", "role": "puller"}
IDENTITY = {"name": "ci", "issuer": "https://x", "audience": "a", "subject": "s"}

# fmt: off
INVALID_BODIES = [
    ("POST", "/orgs", {"name": 7}, "'name' must be a string"),
    ("POST", "/orgs", {}, "'name' is required"),
    ("POST", "/orgs", {"name": "acme", "extra": 1}, "unknown field 'extra'"),
    ("POST", "/orgs", ["acme"], "must be a JSON object"),
    ("POST", "/orgs", {"name": "Not Valid"}, "lower-case"),
    ("POST", "/users", {"name": "x1", "password": PASSWORD, "admin": "yes"},
     "'admin' must be true or false"),
    ("POST", "/users", {"name": "x1", "password": "short"}, "at least 12"),
    ("POST", "/users", {"name": "x1", "password": ["a"] * 12}, "'password' must be"),
    ("PUT", "/users/root/password", {"password": None}, "'password' is required"),
    ("PUT", "/orgs/acme/members/root", {"role": "god"}, "'role' must be one of"),
    ("PUT", "/orgs/acme/members/root", {"role": 1}, "'role' must be a string"),
    ("POST", "/orgs/acme/grants", GRANT | {"principal": "bob"}, "principal must be"),
    ("POST", "/orgs/acme/grants", GRANT | {"repository": "b/*"}, "pattern under acme/"),
    ("POST", "/orgs/acme/grants", GRANT | {"tags": "latest"}, "'tags' must be a list"),
    ("POST", "/orgs/acme/grants", GRANT | {"tags": [""]}, "'tags' must be a list"),
    ("POST", "/orgs/acme/grants", GRANT | {"role": None}, "'role' is required"),
    ("POST", "/orgs/acme/tokens", {"description": "x", "expires_in_days": 0},
     "'expires_in_days' must be more than 0"),
    ("POST", "/orgs/acme/tokens", {"description": "x", "expires_in_days": True},
     "'expires_in_days' must be a number"),
    ("POST", "/orgs/acme/tokens", {"description": "x", "role": "admin"}, "'role'"),
    ("POST", "/orgs/acme/tokens", {"role": "puller"}, "'description' is required"),
    ("POST", "/oidc-identities", IDENTITY | {"issuer": "ftp://x"}, "issuer URL"),
    ("POST", "/oidc-identities", IDENTITY | {"claims": {"a": 1}},
     "'claims' must be an object of strings"),
    ("POST", "/oidc-identities", IDENTITY | {"claims": ["a"]}, "'claims' must be"),
    ("PUT", "/repositories/acme/app/settings", {"visibility": "hidden"},
     "'visibility' must be one of"),
    ("PUT", "/repositories/acme/app/settings", {"starter_tags": [1]}, "'starter_tags'"),
]
# fmt: on


async def test_invalid_bodies_are_400(root: Caller) -> None:
    await add_org(root, "acme")
    for method, path, body, fragment in INVALID_BODIES:
        response = await root.send(method, path, body)
        assert response.status_code == 400, (method, path, body, response.text)
        assert_error(response, 400, "INVALID_REQUEST")
        assert fragment in response.json()["errors"][0]["detail"], (body, fragment)


async def test_malformed_json_is_400(client: httpx.AsyncClient, root: Caller) -> None:
    headers = root.headers | {"Content-Type": "application/json"}
    for content in (
        b"{", b"\xff\xfe\x00", b'{"name": NaN}', b"", b"[" * 30_000 + b"]" * 30_000,
    ):  # fmt: skip
        response = await client.post(f"{API}/orgs", content=content, headers=headers)
        assert response.status_code == 400, content[:20]
        assert_error(response, 400, "INVALID_REQUEST")
        assert "not valid JSON" in response.json()["errors"][0]["detail"]


async def test_bodies_are_json_and_capped(
    client: httpx.AsyncClient, root: Caller
) -> None:
    form = await client.post(f"{API}/orgs", data={"name": "acme"}, headers=root.headers)
    assert_error(form, 415, "UNSUPPORTED")
    headers = root.headers | {"Content-Type": "application/json"}
    big = b'{"name": "acme"' + b" " * MAX_BODY + b"}"
    declared = await client.post(f"{API}/orgs", content=big, headers=headers)
    assert_error(declared, 413, "INVALID_REQUEST")

    # Sent without Content-Length: the cap must hold while reading.
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = await client.post(f"{API}/orgs", content=chunks(), headers=headers)
    assert_error(streamed, 413, "INVALID_REQUEST")
    padded = b'{"name": "acme"' + b" " * (MAX_BODY - 100) + b"}"
    response = await client.post(f"{API}/orgs", content=padded, headers=headers)
    assert response.status_code == 201, response.text


async def test_numbers_too_large_for_a_float_are_refused(
    client: httpx.AsyncClient, root: Caller
) -> None:
    await add_org(root, "acme")
    headers = root.headers | {"Content-Type": "application/json"}
    content = b'{"description": "x", "expires_in_days": 1e999}'  # parses as inf
    response = await client.post(
        f"{API}/orgs/acme/tokens", content=content, headers=headers
    )
    assert_error(response, 400, "INVALID_REQUEST")


async def test_invalid_audit_queries_are_400(root: Caller) -> None:
    for key, value in (
        ("limit", "0"), ("limit", "1001"), ("limit", "ten"), ("after", "-1"),
        ("after", "٣"), ("after", "9" * 30), ("actor", "x" * 201),
    ):  # fmt: skip
        response = await root.send("GET", "/audit", **{key: value})
        assert response.status_code == 400, (key, value)
        assert_error(response, 400, "INVALID_REQUEST")
        assert repr(key) in response.json()["errors"][0]["detail"]


# fmt: off
MISSING_OR_DUPLICATE = [
    ("POST", "/orgs", {"name": "acme"}, 409, "CONFLICT"),
    ("POST", "/users", {"name": "root", "password": PASSWORD}, 409, "CONFLICT"),
    ("DELETE", "/orgs/nope", None, 404, "NOT_FOUND"),
    ("DELETE", "/users/nope", None, 404, "NOT_FOUND"),
    ("PUT", "/users/nope/password", {"password": PASSWORD}, 404, "NOT_FOUND"),
    ("PUT", "/orgs/nope/members/root", {"role": "owner"}, 404, "NOT_FOUND"),
    ("PUT", "/orgs/acme/members/nope", {"role": "owner"}, 404, "NOT_FOUND"),
    ("DELETE", "/orgs/acme/members/root", None, 404, "NOT_FOUND"),
    ("DELETE", "/orgs/acme/grants/999", None, 404, "NOT_FOUND"),
    ("DELETE", "/orgs/acme/tokens/" + "0" * 32, None, 404, "NOT_FOUND"),
    ("POST", "/orgs/nope/tokens", {"description": "x"}, 404, "NOT_FOUND"),
    ("POST", "/orgs/nope/grants", GRANT | {"repository": "nope/*"}, 404, "NOT_FOUND"),
    ("DELETE", "/oidc-identities/nope", None, 404, "NOT_FOUND"),
    ("DELETE", "/orgs/acme/grants/abc", None, 404, "NOT_FOUND"),
    ("GET", "/nothing", None, 404, "NOT_FOUND"),
    ("PATCH", "/orgs", None, 405, "UNSUPPORTED"),
    ("GET", "/repositories/Bad/Name/settings", None, 400, "NAME_INVALID"),
]
# fmt: on


async def test_missing_and_duplicate_objects(root: Caller) -> None:
    await add_org(root, "acme")
    for method, path, body, status, code in MISSING_OR_DUPLICATE:
        response = await root.send(method, path, body)
        assert response.status_code == status, (method, path, response.text)
        assert_error(response, status, code)


async def test_answers_are_not_cached(root: Caller) -> None:
    response = await root.send("GET", "/users")
    assert response.headers["Cache-Control"] == "no-store"
