"""Helpers for tests of token auth: obtaining tokens and acting as a user."""

from __future__ import annotations

import httpx

from cargohold.auth.policy import Principal
from cargohold.registry.services import Services
from tests.apptypes import MakeClient
from tests.watch5xx import ServerErrorWatch

ADMIN = ("root", "root-password-123")
ROOT = Principal("user", "user:root", is_admin=True)


def services_of(client: httpx.AsyncClient) -> Services:
    """The services behind a ``make_client`` client (its app is inside the watch)."""
    watch = client._transport.app  # type: ignore[attr-defined]
    assert isinstance(watch, ServerErrorWatch)
    services: Services = watch.app.state.services  # type: ignore[attr-defined]
    return services


async def token(
    client: httpx.AsyncClient,
    *scopes: str,
    auth: tuple[str, str] | None = None,
    service: str = "cargohold",
) -> str:
    response = await client.get(
        "/token", params={"service": service, "scope": list(scopes)}, auth=auth
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def as_user(
    client: httpx.AsyncClient,
    repo: str,
    actions: str = "pull",
    auth: tuple[str, str] | None = None,
) -> dict[str, str]:
    """Headers carrying a token for ``repository:<repo>:<actions>``.

    The token is anonymous if no auth.
    """
    return bearer(await token(client, f"repository:{repo}:{actions}", auth=auth))


async def token_auth_client(
    make_client: MakeClient, *, auth: dict[str, object] | None = None, **kwargs: object
) -> httpx.AsyncClient:
    """A client of an in-process registry with token auth and the admin ``ADMIN``.

    ``auth`` adds settings of the auth section; other keywords go to ``make_client``.
    """
    from cargohold.registry.bootstrap import bootstrap
    from cargohold.settings import AdminSettings

    client = await make_client(auth={"mode": "token", **(auth or {})}, **kwargs)
    await bootstrap(
        services_of(client), AdminSettings(user=ADMIN[0], password=ADMIN[1])
    )
    return client
