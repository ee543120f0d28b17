"""``PullRecorder`` and ``PullService.note``: bounded, never blocking, flushed in
batches, emitted after the write; HEAD only when configured; anonymous identities."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest
import structlog

from cargohold.auth.policy import ANONYMOUS, OPEN, Principal
from cargohold.metadata.pulls import Puller, PullEvent, PullFilter, PullRecord
from cargohold.oci.names import RepositoryName
from cargohold.registry.events import RegistryEvent
from cargohold.registry.limits import RepositoryAccess
from cargohold.registry.pulls import PullService
from cargohold.settings import PullSettings
from tests.clock import ManualClock

DIGEST = "sha256:" + "c" * 64


class MemoryPullStore:
    """Keeps what is written; ``fail`` makes the next write raise."""

    def __init__(self) -> None:
        self.batches: list[list[PullEvent]] = []
        self.fail = False

    async def record(self, events: list[PullEvent]) -> list[PullRecord]:
        if self.fail:
            raise RuntimeError("database down")
        self.batches.append(events)
        return [PullRecord(i, e, "acme") for i, e in enumerate(events)]

    async def query(
        self, where: PullFilter, *, limit: int, before: tuple[float, int] | None = None
    ) -> list[PullRecord]:
        raise NotImplementedError

    async def pullers(self, digest: str, *, since: float) -> list[Puller]:
        raise NotImplementedError

    async def prune(
        self, *, events_before: float, daily_before: int, batch: int
    ) -> tuple[int, int]:
        raise NotImplementedError


class NoSchedules:
    async def try_acquire(
        self, name: str, holder: str, now: float, lease_seconds: float
    ) -> bool:
        return False

    async def finish(self, name: str, holder: str, next_run_at: float) -> bool:
        return False


class Sink:
    def __init__(self, *, hears: bool = True) -> None:
        self.events: list[RegistryEvent] = []
        self.hears = hears

    async def wants(self, event_type: str) -> bool:
        return self.hears and event_type == "pull"

    async def emit(self, events: Sequence[RegistryEvent]) -> None:
        self.events.extend(events)


def service(store: MemoryPullStore, sink: Sink, **settings: object) -> PullService:
    return PullService(
        store,
        None,  # type: ignore[arg-type]  # the account store is not read here
        NoSchedules(),
        dataclasses.replace(PullSettings(), **settings),  # type: ignore[arg-type]
        trusted_proxies=("10.0.0.0/8",),
        sink=sink,
        clock=ManualClock(1_780_000_000.0),
    )


def access(principal: Principal) -> RepositoryAccess:
    return RepositoryAccess(RepositoryName.parse("acme/app"), principal, {"pull": None})


def note(pulls: PullService, principal: Principal, **kwargs: str) -> None:
    pulls.note(
        access(principal),
        kwargs.get("reference", "latest"),
        DIGEST,
        method=kwargs.get("method", "GET"),
        peer=kwargs.get("peer", "198.51.100.7"),
        forwarded_for=kwargs.get("forwarded_for"),
        user_agent=kwargs.get("agent", "docker/24.0.7 os/linux arch/arm64"),
    )


ALICE = Principal("user", "user:alice")


async def test_flush_writes_one_batch_and_emits_it() -> None:
    store, sink = MemoryPullStore(), Sink()
    pulls = service(store, sink)
    note(pulls, ALICE)
    note(pulls, ALICE, reference=DIGEST)
    assert store.batches == []  # nothing written on the request's path
    assert await pulls.recorder.flush() == 2
    assert len(store.batches) == 1
    first = store.batches[0][0]
    assert (first.identity, first.kind, first.tool, first.platform) == (
        "user:alice", "user", "docker", "linux/arm64",
    )  # fmt: skip
    assert [e.type for e in sink.events] == ["pull", "pull"]
    assert sink.events[0].organization == "acme"
    assert sink.events[0].actor == "user:alice"
    assert len({e.id for e in sink.events}) == 2
    assert await pulls.recorder.flush() == 0
    await pulls.recorder.close()


async def test_no_pull_events_built_when_nobody_listens() -> None:
    store, sink = MemoryPullStore(), Sink(hears=False)
    pulls = service(store, sink)
    note(pulls, ALICE)
    assert await pulls.recorder.flush() == 1
    assert len(store.batches) == 1  # written all the same
    assert sink.events == []
    await pulls.recorder.close()


async def test_head_only_when_configured() -> None:
    store, sink = MemoryPullStore(), Sink()
    pulls = service(store, sink)
    note(pulls, ALICE, method="HEAD")
    assert pulls.recorder.pending == 0
    pulls = service(store, sink, record_head=True)
    note(pulls, ALICE, method="HEAD")
    assert pulls.recorder.pending == 1
    await pulls.recorder.close()
    assert store.batches[0][0].method == "HEAD"


async def test_disabled_records_nothing() -> None:
    store, sink = MemoryPullStore(), Sink()
    pulls = service(store, sink, enabled=False)
    note(pulls, ALICE)
    assert pulls.recorder.pending == 0


async def test_full_queue_drops_and_logs() -> None:
    store, sink = MemoryPullStore(), Sink()
    pulls = service(store, sink, max_queue=3)
    with structlog.testing.capture_logs() as logs:
        for _ in range(5):
            note(pulls, ALICE)
        assert pulls.recorder.pending == 3
        assert await pulls.recorder.flush() == 3
    dropped = [entry for entry in logs if entry.get("dropped")]
    assert dropped
    assert dropped[0]["dropped"] == 2
    await pulls.recorder.close()


async def test_a_failed_write_is_logged_not_raised() -> None:
    store, sink = MemoryPullStore(), Sink()
    pulls = service(store, sink)
    note(pulls, ALICE)
    store.fail = True
    assert await pulls.recorder.flush() == 0
    assert sink.events == []
    store.fail = False
    await pulls.recorder.close()


@pytest.mark.parametrize(
    ("principal", "peer", "forwarded", "granularity", "identity", "client"),
    [
        (ANONYMOUS, "198.51.100.7", None, "address", "anonymous:198.51.100.7",
         "198.51.100.7"),
        (ANONYMOUS, "198.51.100.7", None, "prefix", "anonymous:198.51.100.0/24",
         "198.51.100.0/24"),
        # auth off: recorded as anonymous
        (OPEN, "198.51.100.7", None, "address", "anonymous:198.51.100.7",
         "198.51.100.7"),
        # behind a trusted proxy
        (ANONYMOUS, "10.0.0.2", "203.0.113.5", "address", "anonymous:203.0.113.5",
         "203.0.113.5"),
        # an untrusted peer's header is ignored
        (ANONYMOUS, "198.51.100.7", "203.0.113.5", "address",
         "anonymous:198.51.100.7", "198.51.100.7"),
        (ALICE, "10.0.0.2", "203.0.113.5", "prefix", "user:alice", "203.0.113.5"),
    ],
)  # fmt: skip
async def test_identity_and_client(
    principal: Principal,
    peer: str,
    forwarded: str | None,
    granularity: str,
    identity: str,
    client: str,
) -> None:
    store, sink = MemoryPullStore(), Sink()
    pulls = service(store, sink, anonymous_granularity=granularity)
    if forwarded is None:
        note(pulls, principal, peer=peer)
    else:
        note(pulls, principal, peer=peer, forwarded_for=forwarded)
    await pulls.recorder.close()
    event = store.batches[0][0]
    assert (event.identity, event.client) == (identity, client)
    assert event.kind == ("user" if principal is ALICE else "anonymous")
