"""What a test needs from the machine: skip on a laptop, fail on CI.

CI (``CI=true``) installs every client and service through ``scripts/setup.sh`` and
``scripts/test.sh``, so there a missing one is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def on_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> NoReturn:
    if on_ci():
        pytest.fail(
            f"{reason} (CI=true: a missing prerequisite is a failure)", pytrace=False
        )
    pytest.skip(reason)


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"not installed: {', '.join(missing)}; run scripts/setup.sh")
