"""The status page's pure parts: uptime per day, the bars, the roll-ups, the runner."""

from __future__ import annotations

import asyncio

import pytest

from cargohold.metadata.status import (
    DAY,
    DEGRADED,
    INCIDENT,
    MAINTENANCE,
    MAJOR,
    OPERATIONAL,
    PARTIAL,
    UNDER_MAINTENANCE,
    CheckResult,
    DailyCounts,
    Incident,
)
from cargohold.registry import status as status_module
from cargohold.registry.status import (
    Outcome,
    _timed,
    bars,
    component_status,
    day_status,
    in_window,
    overall,
    uptime,
    worst,
)
from cargohold.settings import SettingsError, load


def counts(day: int = 100, **seen: int) -> DailyCounts:
    fields = {"operational": 0, "degraded": 0, "partial": 0, "major": 0}
    fields |= seen
    return DailyCounts(
        "registry-api", day, sum(fields.values()), maintenance=0, **fields
    )


def incident(
    kind: str = INCIDENT,
    *,
    status: str = "investigating",
    impact: str = "minor",
    components: tuple[str, ...] = ("registry-api",),
    window: tuple[float, float] | None = None,
) -> Incident:
    return Incident(
        id="abc",
        kind=kind,
        name="n",
        status=status,
        impact=impact,
        components=components,
        created_at=0.0,
        updated_at=0.0,
        scheduled_for=window[0] if window else None,
        scheduled_until=window[1] if window else None,
    )


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        ({"operational": 10}, 1.0),
        ({"operational": 9, "major": 1}, 0.9),
        # A partial outage counts 30 % as downtime; degraded performance not at all.
        ({"operational": 8, "partial": 2}, 1 - 0.6 / 10),
        ({"operational": 5, "degraded": 5}, 1.0),
        ({"major": 4}, 0.0),
    ],
)
def test_uptime_of_a_day(seen: dict[str, int], expected: float) -> None:
    assert uptime(counts(**seen)) == pytest.approx(expected)


def test_a_day_without_checks_has_no_uptime_and_no_status() -> None:
    assert uptime(counts()) is None
    assert day_status(counts()) is None
    assert day_status(None) is None


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        ({"operational": 3}, OPERATIONAL),
        ({"operational": 3, "degraded": 1}, DEGRADED),
        ({"degraded": 3, "partial": 1}, PARTIAL),
        ({"partial": 3, "major": 1, "operational": 100}, MAJOR),
    ],
)
def test_a_day_shows_its_worst_status(seen: dict[str, int], expected: str) -> None:
    assert day_status(counts(**seen)) == expected


def test_bars_cover_ninety_days_and_mark_days_without_data() -> None:
    today = 20_000
    daily = [
        counts(today, operational=10),
        counts(today - 2, operational=9, major=1),
        counts(today - 200, major=5),  # outside the window: ignored
    ]
    out, total = bars(daily, "registry-api", today)
    assert len(out) == 90
    assert (out[0].day, out[-1].day) == (today - 89, today)
    assert [b.status for b in out[-3:]] == [MAJOR, None, OPERATIONAL]
    assert out[-2].uptime is None
    assert out[-2].checks == 0
    assert sum(b.status is None for b in out) == 88
    # Over the days with data: 1 major check in 20.
    assert total == pytest.approx(0.95)
    assert out[-1].date == "2024-10-04"


def test_bars_of_a_component_never_checked() -> None:
    out, total = bars([counts(5, operational=1)], "blob-storage", 5)
    assert total is None
    assert all(b.status is None for b in out)


def test_worst() -> None:
    assert worst([]) == OPERATIONAL
    assert worst([OPERATIONAL, PARTIAL, DEGRADED]) == PARTIAL
    assert worst([MAJOR, OPERATIONAL]) == MAJOR


@pytest.mark.parametrize(
    ("statuses", "impacts", "expected"),
    [
        ([OPERATIONAL] * 3, [], ("none", "All Systems Operational")),
        ([OPERATIONAL, DEGRADED], [], ("minor", "Minor Service Outage")),
        ([PARTIAL, DEGRADED], [], ("major", "Partial System Outage")),
        ([MAJOR, OPERATIONAL], [], ("critical", "Major System Outage")),
        ([OPERATIONAL], ["critical"], ("critical", "Major System Outage")),
        ([DEGRADED], ["none"], ("minor", "Minor Service Outage")),
        (
            [UNDER_MAINTENANCE, OPERATIONAL],
            [],
            ("maintenance", "Service Under Maintenance"),
        ),
        ([UNDER_MAINTENANCE, PARTIAL], [], ("major", "Partial System Outage")),
    ],
)
def test_overall_roll_up(
    statuses: list[str], impacts: list[str], expected: tuple[str, str]
) -> None:
    assert overall(statuses, [incident(impact=i) for i in impacts]) == expected


def _check(status: str) -> CheckResult:
    return CheckResult("registry-api", 0.0, status, 1.0, "")


def test_component_status_from_checks_incidents_and_maintenance() -> None:
    assert component_status("registry-api", None, [], now=0.0) == OPERATIONAL
    assert component_status("registry-api", _check(DEGRADED), [], now=0) == DEGRADED
    # An open incident naming the component makes it at least as bad as its impact.
    major = incident(impact="major")
    assert component_status("registry-api", _check(OPERATIONAL), [major], now=0) == (
        PARTIAL
    )
    assert component_status("registry-api", _check(MAJOR), [major], now=0) == MAJOR
    assert component_status("blob-storage", None, [major], now=0) == OPERATIONAL
    window = incident(MAINTENANCE, status="scheduled", window=(100.0, 200.0))
    assert component_status("registry-api", None, [window], now=50) == OPERATIONAL
    assert component_status("registry-api", None, [window], now=150) == (
        UNDER_MAINTENANCE
    )
    assert component_status("registry-api", None, [window], now=200) == OPERATIONAL


def test_maintenance_window() -> None:
    scheduled = incident(MAINTENANCE, status="scheduled", window=(10.0, 20.0))
    assert not in_window(scheduled, 9.9)
    assert in_window(scheduled, 10.0)
    assert not in_window(scheduled, 20.0)
    started_early = incident(MAINTENANCE, status="in_progress", window=(10.0, 20.0))
    assert in_window(started_early, 5.0)
    done = incident(MAINTENANCE, status="completed", window=(10.0, 20.0))
    assert not in_window(done, 15.0)


async def test_a_check_that_hangs_or_raises_is_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(status_module, "CHECK_TIMEOUT", 0.05)

    async def hangs() -> Outcome:
        await asyncio.sleep(10)
        return Outcome(OPERATIONAL, "never")

    async def raises() -> Outcome:
        raise OSError("disk on fire")

    async def fine() -> Outcome:
        return Outcome(DEGRADED, "slow")

    hung, _ = await _timed(hangs)
    assert hung.status == MAJOR
    assert "no answer within" in hung.detail
    failed, _ = await _timed(raises)
    assert (failed.status, failed.detail) == (MAJOR, "OSError: disk on fire")
    answered, latency = await _timed(fine)
    assert answered == Outcome(DEGRADED, "slow")
    assert latency >= 0


def test_day_is_utc_days_since_the_epoch() -> None:
    assert DAY == 86_400


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"interval_seconds": 0.5}, "status.interval_seconds"),
        ({"upstreams": ["ftp://mirror"]}, "status.upstreams"),
        ({"upstreams": ["https://"]}, "status.upstreams"),
    ],
)
def test_bad_status_settings_fail_at_load(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load(None, {}, {"status": values})


def test_status_settings_from_the_environment() -> None:
    settings = load(
        None,
        {
            "CARGOHOLD_STATUS_UPSTREAMS": "https://registry-1.docker.io,https://ghcr.io",
            "CARGOHOLD_STATUS_ENABLED": "false",
            "CARGOHOLD_STATUS_INTERVAL_SECONDS": "30",
        },
    )
    assert settings.status.upstreams == (
        "https://registry-1.docker.io",
        "https://ghcr.io",
    )
    assert settings.status.enabled is False
    assert settings.status.interval_seconds == 30.0
