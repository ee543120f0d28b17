"""CI identities: a job's OIDC ID token exchanged for a registry token."""

from __future__ import annotations

import httpx
import jwt
import pytest

from tests.integration.authhelpers import ROOT, bearer, services_of
from tests.integration.helpers import assert_error, push_image
from tests.oidc_issuer import OidcIssuer

pytestmark = pytest.mark.anyio

SUBJECT = "repo:acme/app:ref:refs/heads/main"


@pytest.fixture
def issuer():
    with OidcIssuer() as running:
        yield running


async def _configure(client: httpx.AsyncClient, issuer: OidcIssuer) -> None:
    admin = services_of(client).auth.admin
    await admin.create_organization(ROOT, "acme", client="t")
    await admin.create_oidc_identity(
        ROOT,
        name="acme-ci",
        issuer=issuer.url,
        audience="cargohold",
        subject="repo:acme/app:ref:refs/heads/*",
        claims={"repository_owner": "acme"},
        client="t",
    )
    await admin.add_grant(
        ROOT,
        principal="oidc:acme-ci",
        organization="acme",
        repository="acme/*",
        role="pusher",
        tags=None,
        client="t",
    )


async def test_ci_job_pushes_with_its_id_token(
    auth_client: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    await _configure(auth_client, issuer)
    id_token = issuer.mint(SUBJECT, "cargohold", claims={"repository_owner": "acme"})
    response = await auth_client.get(
        "/token",
        params={"service": "cargohold", "scope": "repository:acme/app:pull,push"},
        auth=("acme-ci", id_token),
    )
    assert response.status_code == 200, response.text
    registry_token = response.json()["token"]
    claims = jwt.decode(registry_token, options={"verify_signature": False})
    assert claims["sub"] == "oidc:acme-ci"
    assert claims["access"][0]["actions"] == ["pull", "push"]
    auth_client.headers.update(bearer(registry_token))
    await push_image(auth_client, "acme/app", "ci-build")


@pytest.mark.parametrize(
    ("subject", "audience", "claims"),
    [
        ("repo:acme/app:ref:refs/pull/1", "cargohold", {"repository_owner": "acme"}),
        (SUBJECT, "someone-else", {"repository_owner": "acme"}),
        (SUBJECT, "cargohold", {"repository_owner": "evil"}),
        (SUBJECT, "cargohold", {}),
    ],
)
async def test_non_matching_id_tokens_are_refused(
    auth_client: httpx.AsyncClient,
    issuer: OidcIssuer,
    subject: str,
    audience: str,
    claims: dict[str, str],
) -> None:
    await _configure(auth_client, issuer)
    id_token = issuer.mint(subject, audience, claims=claims)
    response = await auth_client.get("/token", auth=("acme-ci", id_token))
    assert_error(response, 401, "UNAUTHORIZED")


async def test_expired_id_token_is_refused(
    auth_client: httpx.AsyncClient, issuer: OidcIssuer
) -> None:
    await _configure(auth_client, issuer)
    id_token = issuer.mint(
        SUBJECT, "cargohold", claims={"repository_owner": "acme"}, expires_in=-600
    )
    assert_error(
        await auth_client.get("/token", auth=("acme-ci", id_token)), 401, "UNAUTHORIZED"
    )
