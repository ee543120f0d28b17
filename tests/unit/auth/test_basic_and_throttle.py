"""HTTP Basic parsing and the failed-login throttle."""

from __future__ import annotations

import base64

import pytest

from cargohold.auth.basic import MalformedCredentials, parse_basic
from cargohold.auth.throttle import LoginThrottle


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_parse_basic() -> None:
    assert parse_basic(_b64("alice:s3cret:with:colons")) == (
        "alice",
        "s3cret:with:colons",
    )
    assert parse_basic(f" {_b64('u:')} ") == ("u", "")


@pytest.mark.parametrize("value", ["not base64!", _b64("no-colon"), "////", "gA=="])
def test_malformed_basic(value: str) -> None:
    with pytest.raises(MalformedCredentials):
        parse_basic(value)


def test_throttle_per_identity_and_window() -> None:
    throttle = LoginThrottle(per_identity=2, per_client=100, window=10)
    assert throttle.retry_after("alice", "1.2.3.4", now=0) == 0
    throttle.failed("alice", "1.2.3.4", now=0)
    throttle.failed("alice", "5.6.7.8", now=1)
    assert throttle.retry_after("alice", "9.9.9.9", now=2) == 9
    assert throttle.retry_after("bob", "1.2.3.4", now=2) == 0
    assert throttle.retry_after("alice", "1.2.3.4", now=11.5) == 0  # window slid past


def test_throttle_per_client() -> None:
    throttle = LoginThrottle(per_identity=100, per_client=3, window=60)
    for name in ("a", "b", "c"):
        throttle.failed(name, "10.0.0.1", now=0)
    assert throttle.retry_after("d", "10.0.0.1", now=1) == 60
    assert throttle.retry_after("d", "10.0.0.2", now=1) == 0


def test_success_clears_the_identity_count() -> None:
    throttle = LoginThrottle(per_identity=1, per_client=100, window=60)
    throttle.failed("alice", "c", now=0)
    assert throttle.retry_after("alice", "c", now=1) > 0
    throttle.succeeded("alice")
    assert throttle.retry_after("alice", "other", now=1) == 0
