"""Managing a running cargohold's identities from the test process.

The tests set up users, organizations, pull tokens and repository visibility through the
same domain service the management API and CLI use, on the server's data directory
(SQLite is shared safely between processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from cargohold.api.app import open_services
from cargohold.auth.policy import Principal
from cargohold.registry.admin import AdminService
from cargohold.settings import load

T = TypeVar("T")
ROOT = Principal("user", "user:root", is_admin=True)


def administer(data_dir: Path, action: Callable[[AdminService], Awaitable[T]]) -> T:
    """Run ``action`` with an ``AdminService`` on ``data_dir``; returns its result."""

    async def run() -> T:
        services = open_services(load(None, {}, {"data_dir": data_dir}))
        try:
            return await action(services.auth.admin)
        finally:
            await services.close()

    return asyncio.run(run())
