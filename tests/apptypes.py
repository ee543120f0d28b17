"""Types of the shared fixtures, for annotating tests that take them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias

import httpx

# tests/conftest.py ``make_client(**overrides)``: a client of a fresh in-process app.
MakeClient: TypeAlias = Callable[..., Awaitable[httpx.AsyncClient]]
