"""Fixtures shared by every tier: clean environment, settings and app factories."""

from __future__ import annotations

import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from cargohold import settings as settings_module
from cargohold.api.app import create_app, open_services
from cargohold.settings import Settings
from tests.s3server import MotoServer, create_bucket, storage_settings
from tests.watch5xx import ALLOW_MARK, ServerErrorWatch

# Property tests: a modest number of examples keeps the tiers fast; no deadline, as the
# machine running them may be loaded. HYPOTHESIS_PROFILE=thorough for a long hunt.
hypothesis_settings.register_profile(
    "cargohold",
    max_examples=40,
    deadline=None,
    # A function-scoped app is shared by a test's examples on purpose: whatever state
    # they leave, no answer may be a 5xx.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
hypothesis_settings.register_profile(
    "thorough", parent=hypothesis_settings.get_profile("cargohold"), max_examples=2000
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cargohold"))

# "s3": the in-process app's blob store is S3 on moto (see ``settings_factory``).
TEST_STORAGE = os.environ.get("CARGOHOLD_TEST_STORAGE", "filesystem")
SEED_VARIABLE = "CARGOHOLD_TEST_SEED"
# Read at import: ``_clean_environ`` removes every CARGOHOLD_* variable before a test.
SEED_OVERRIDE = os.environ.get(SEED_VARIABLE)
_SEED = pytest.StashKey[int]()


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's random choices: ``CARGOHOLD_TEST_SEED`` or a new one.

    A failing test prints it in a "seed" report section; set the variable to replay.
    """
    value = int(SEED_OVERRIDE) if SEED_OVERRIDE else random.randrange(2**32)  # noqa: S311
    request.node.stash[_SEED] = value
    return value


@pytest.fixture
def rng(seed: int) -> random.Random:
    """Random choices (timings, sizes, bytes) that ``seed`` replays."""
    return random.Random(seed)  # noqa: S311 - reproducible, not secret


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if TEST_STORAGE != "s3":
        return
    skip = pytest.mark.skip(reason="looks at files; CARGOHOLD_TEST_STORAGE=s3")
    for item in items:
        if item.get_closest_marker("filesystem_only") is not None:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _SEED in item.stash:
        report.sections.append(
            ("seed", f"replay with {SEED_VARIABLE}={item.stash[_SEED]}")
        )
    return report


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``CARGOHOLD_*`` variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("CARGOHOLD_"):
            monkeypatch.delenv(key)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., Settings]:
    """Settings on a fresh data directory.

    Keyword arguments are TOML-shaped overrides. With ``CARGOHOLD_TEST_STORAGE=s3``
    the blob store is S3 (a fresh bucket on the ``s3_endpoint`` moto server) unless a
    test sets ``storage`` itself: the in-process API suites then run on S3.
    """

    def make(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        if TEST_STORAGE == "s3" and "storage" not in overrides:
            endpoint = request.getfixturevalue("s3_endpoint")
            overrides["storage"] = storage_settings(endpoint, create_bucket(endpoint))
        return settings_module.load(None, {}, overrides)

    return make


@pytest.fixture
async def make_client(
    settings_factory: Callable[..., Settings], request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """``make_client(**overrides)``: an httpx client wired to a fresh app in-process.

    ``clock=`` replaces the services' wall clock (``tests.clock.ManualClock``). Every
    answer is watched: a 5xx fails the test at teardown unless it is marked
    ``allow_5xx``.
    """
    opened = []
    watches: list[ServerErrorWatch] = []

    async def make(
        *, clock: Callable[[], float] = time.time, **overrides: Any
    ) -> httpx.AsyncClient:
        overrides.setdefault("auth", {"mode": "none"})
        settings = settings_factory(**overrides)
        services = open_services(settings, clock=clock)
        await services.start()
        watch = ServerErrorWatch(create_app(settings, services=services))
        watches.append(watch)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=watch), base_url="http://registry.test"
        )
        opened.append((client, services))
        return client

    yield make
    for client, services in opened:
        await client.aclose()
        await services.close()
    seen = [answer for watch in watches for answer in watch.seen]
    if seen and request.node.get_closest_marker(ALLOW_MARK) is None:
        pytest.fail(
            f"unexpected 5xx answers (mark the test allow_5xx if expected): {seen}",
            pytrace=False,
        )


@pytest.fixture
async def client(
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> httpx.AsyncClient:
    """A client of a registry with authentication off (the core API tests)."""
    return await make_client()


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Generator[str, None, None]:
    """The URL of a moto S3 server (``tests/s3server.py``), one per test session.

    Make a bucket per test with ``tests.s3server.create_bucket(s3_endpoint)``.
    """
    with MotoServer() as server:
        yield server.url
