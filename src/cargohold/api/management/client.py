"""Calling the management API from Python: in-process on a data directory, or over HTTP.

Both backends speak the same HTTP API, so they validate, answer and audit alike: the
local one serves the handlers in-process (``local.local_app``) as a fixed principal, the
remote one calls a running registry with Basic auth. The admin CLI is their user.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from cargohold.api.management.routes import PREFIX

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cargohold.auth.policy import Principal
    from cargohold.settings import Settings


class ManagementError(Exception):
    """The management API refused a call, or could not be reached (``status`` 0)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Operation:
    """One management call: ``path`` is below ``/api/v1`` with its segments quoted."""

    method: str
    path: str
    body: Mapping[str, object] | None = None
    params: Mapping[str, str | int] | None = None


class Backend(Protocol):
    async def call(self, operation: Operation) -> Any:
        """The JSON answer (``None`` when empty). Raises ``ManagementError``."""
        ...

    async def close(self) -> None:
        """Release connections (and, locally, the data directory); call it once."""
        ...


async def _send(http: httpx.AsyncClient, operation: Operation) -> Any:
    try:
        response = await http.request(
            operation.method,
            PREFIX + operation.path,
            json=operation.body,
            params=operation.params,
        )
    except httpx.HTTPError as exc:
        raise ManagementError(
            0, "UNREACHABLE", f"cannot reach the registry: {exc}"
        ) from exc
    if response.is_success:
        return response.json() if response.content else None
    try:
        error = response.json()["errors"][0]
        message, code = str(error.get("detail") or error["message"]), str(error["code"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        message, code = response.text[:200] or response.reason_phrase, "HTTP"
    raise ManagementError(response.status_code, code, message)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (containers)
        return str(os.getuid())


class LocalBackend:
    """The data directory of ``settings`` itself, every call acting as ``principal``.

    The audit log shows the principal as the actor and ``local:<OS account>`` as the
    client.
    """

    def __init__(self, settings: Settings, principal: Principal) -> None:
        from cargohold.api.app import open_services  # noqa: PLC0415 - app imports us
        from cargohold.api.management.local import local_app  # noqa: PLC0415

        self._services = open_services(settings)
        app = local_app(settings, self._services, principal)
        transport = httpx.ASGITransport(app=app, client=(f"local:{_os_user()}", 0))
        self._http = httpx.AsyncClient(transport=transport, base_url="http://local")

    async def call(self, operation: Operation) -> Any:
        return await _send(self._http, operation)

    async def close(self) -> None:
        await self._http.aclose()
        await self._services.close()


class RemoteBackend:
    """A running registry at ``url``, as ``username`` (a password or a pull token)."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"), auth=(username, password), timeout=30.0
        )

    async def call(self, operation: Operation) -> Any:
        return await _send(self._http, operation)

    async def close(self) -> None:
        await self._http.aclose()
