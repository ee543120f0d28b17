"""``[pulls]`` and ``server.trusted_proxies``: defaults, overrides, bad values fail."""

from __future__ import annotations

import pytest

from cargohold.settings import SettingsError, load


def test_defaults() -> None:
    settings = load(None, {})
    assert settings.pulls.enabled
    assert not settings.pulls.record_head
    assert settings.pulls.flush_interval_seconds == 1.0
    assert (settings.pulls.retention_days, settings.pulls.aggregate_retention_days) == (
        90,
        730,
    )
    assert settings.server.trusted_proxies == ()


def test_environment() -> None:
    settings = load(
        None,
        {
            "CARGOHOLD_SERVER_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
            "CARGOHOLD_PULLS_ANONYMOUS_GRANULARITY": "prefix",
            "CARGOHOLD_PULLS_RECORD_HEAD": "true",
        },
    )
    assert settings.server.trusted_proxies == ("10.0.0.0/8", "::1")
    assert settings.pulls.anonymous_granularity == "prefix"
    assert settings.pulls.record_head


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"server": {"trusted_proxies": ["10.0.0.0/33"]}}, "trusted_proxies"),
        ({"server": {"trusted_proxies": ["proxy.example"]}}, "trusted_proxies"),
        ({"pulls": {"ipv4_prefix": 33}}, "ipv4_prefix"),
        ({"pulls": {"ipv6_prefix": -1}}, "ipv6_prefix"),
        ({"pulls": {"max_queue": 0}}, "max_queue"),
        ({"pulls": {"retention_days": 0}}, "retention_days"),
        ({"pulls": {"flush_interval_seconds": 0}}, "flush_interval_seconds"),
        ({"pulls": {"anonymous_granularity": "city"}}, "anonymous_granularity"),
        ({"pulls": {"bogus": 1}}, "pulls.bogus"),
    ],
)
def test_bad_values_fail_at_load(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(None, {}, overrides)
