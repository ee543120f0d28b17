"""Fixtures for the integration tier (see README.md)."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.authhelpers import token_auth_client


@pytest.fixture
async def auth_client(make_client) -> httpx.AsyncClient:
    """A registry with token auth on and the administrator ``authhelpers.ADMIN``."""
    return await token_auth_client(make_client)
