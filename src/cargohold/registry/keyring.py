"""``KeyRing``: the token signing keys every replica shares, kept fresh in memory.

A new key is published (accepted for verification) at once but signs only after
``ACTIVATION_DELAY``. Every server process asks the database every ``REFRESH_INTERVAL``
(a background task of the app) for the key table's fingerprint, one indexed aggregate,
and reloads the keys when it moved: a key added, retired or purged anywhere is known to
every replica within that second, long before it signs.
"""

from __future__ import annotations

import time

import structlog

from cargohold.auth import keys
from cargohold.auth.keys import KeySet, SigningKey
from cargohold.metadata.accounts import AccountStore, KeyRecord

log = structlog.get_logger(__name__)

REFRESH_INTERVAL = 1.0
ACTIVATION_DELAY = 90.0


class KeyRing:
    def __init__(
        self, store: AccountStore, *, algorithm: str, retention_hours: float
    ) -> None:
        self._store = store
        self._algorithm = algorithm
        self._retention = retention_hours * 3600
        self._set: KeySet | None = None
        self._version: tuple[int, float, float] | None = None
        self._records: list[KeyRecord] = []

    def current(self) -> KeySet:
        if self._set is None:
            raise RuntimeError("KeyRing.load() has not run")
        return self._set

    async def load(self) -> KeySet:
        """(Re)read the keys; creates the first key when there is none."""
        version = await self._store.keys.version()
        records = await self._store.keys.all()
        if not records:
            await self.rotate(activate_now=True)
            version = await self._store.keys.version()
            records = await self._store.keys.all()
        self._version, self._records = version, records
        return self._select(time.time())

    async def refresh(self) -> KeySet:
        """Reload if the key table changed since the last look; else recompute which
        key signs (a new key starts signing once its activation delay has passed)."""
        if self._version is None or await self._store.keys.version() != self._version:
            return await self.load()
        return self._select(time.time())

    def _select(self, now: float) -> KeySet:
        known = self._set.accepted if self._set is not None else {}
        accepted = {
            r.kid: known.get(r.kid)
            or keys.load(r.kid, r.algorithm, r.private_pem, r.created_at)
            for r in self._records
            if r.retired_at is None or r.retired_at > now - self._retention
        }
        self._set = KeySet(self._active(self._records, accepted, now), accepted)
        return self._set

    @staticmethod
    def _active(
        records: list[KeyRecord], accepted: dict[str, SigningKey], now: float
    ) -> SigningKey:
        # The newest key old enough to be known everywhere; else the newest at all.
        live = sorted(
            (r for r in records if r.kid in accepted),
            key=lambda r: r.created_at,
            reverse=True,
        )
        for record in live:
            if record.created_at <= now - ACTIVATION_DELAY:
                return accepted[record.kid]
        return accepted[live[0].kid]

    async def rotate(self, *, activate_now: bool = False) -> SigningKey:
        """Add a new signing key.

        Older keys retire and stay accepted for the retention.
        """
        now = time.time()
        created = now - ACTIVATION_DELAY if activate_now else now
        key = keys.generate(self._algorithm, created)
        await self._store.keys.add(
            KeyRecord(key.kid, key.algorithm, key.private_pem(), created, None)
        )
        await self._store.keys.retire_others(
            key.kid, now + (0 if activate_now else ACTIVATION_DELAY)
        )
        await self._store.keys.purge(now - self._retention)
        log.info("token signing key added", kid=key.kid, algorithm=key.algorithm)
        return key
