"""Fixtures for the unit tier: no network.

``tests/conftest.py`` already clears ``CARGOHOLD_*`` and picks the asyncio backend.
"""

from __future__ import annotations

import socket
from typing import NoReturn

import pytest


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never touch the network; a connect or bind fails loudly."""

    def refuse(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError("unit tests must not open network connections")

    for method in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, method, refuse)
