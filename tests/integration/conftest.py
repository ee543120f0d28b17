"""Fixtures for the integration tier (see README.md)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.apptypes import MakeClient
from tests.integration.authhelpers import token_auth_client
from tests.integration.serverproc import NO_AUTH, ServerProcess, check_log


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, removed afterwards (server data dirs can be large)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def server(workdir: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A ``cargohold serve`` subprocess (auth off), not started yet; stopped after.

    The test fails if the server logged an unhandled error or a 5xx answer.
    """
    process = ServerProcess(workdir / "data", workdir / "server.log", settings=NO_AUTH)
    try:
        yield process
    finally:
        process.stop()
    check_log(process, request)


@pytest.fixture
async def auth_client(make_client: MakeClient) -> httpx.AsyncClient:
    """A registry with token auth on and the administrator ``authhelpers.ADMIN``."""
    return await token_auth_client(make_client)
