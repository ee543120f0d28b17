"""First-start set-up: the first administrator and the first signing key."""

from __future__ import annotations

import secrets
import time

from cargohold.auth import passwords
from cargohold.metadata.accounts import UserRecord
from cargohold.registry.services import Services
from cargohold.settings import AdminSettings


async def bootstrap(services: Services, admin: AdminSettings) -> str | None:
    """Create the first admin when there is no user; returns a generated password.

    The name and password come from the settings (``CARGOHOLD_ADMIN_USER`` and
    ``CARGOHOLD_ADMIN_PASSWORD``); without a password a random one is generated, and the
    caller shows it once. Nothing happens when any user exists.
    """
    accounts = services.auth.accounts
    await services.auth.keyring.load()
    if await accounts.users.all():
        return None
    name = admin.user or "admin"
    password = admin.password or secrets.token_urlsafe(18)
    created = await accounts.users.create(
        UserRecord(
            name,
            passwords.hash_password(password),
            is_admin=True,
            disabled=False,
            created_at=time.time(),
        )
    )
    if created:
        services.auth.audit.record(
            "system", "user.create", f"user:{name}", detail="first administrator"
        )
        await services.auth.audit.flush()
    return None if admin.password or not created else password
