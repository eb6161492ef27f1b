"""Schedule kinds and time zones: Asia/Shanghai (no DST) and America/New_York (DST)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broadcasts.schedule import Schedule, ScheduleError

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def test_now_fires_at_confirmation_once() -> None:
    s = Schedule.parse({"kind": "now"}, "Asia/Shanghai")
    assert s.first_fire(NOW) == NOW
    assert s.next_fire(NOW, NOW) is None


def test_at_is_read_in_the_marketers_zone() -> None:
    s = Schedule.parse({"kind": "at", "at": "2026-03-05T09:30"}, "Asia/Shanghai")
    assert s.first_fire(NOW) == datetime(2026, 3, 5, 1, 30, tzinfo=UTC)


def test_weekly_cron_in_shanghai_fires_at_local_nine() -> None:
    s = Schedule.parse({"kind": "cron", "cron": "0 9 * * mon"}, "Asia/Shanghai")
    first = s.first_fire(NOW)
    assert first == datetime(2026, 3, 9, 1, 0, tzinfo=UTC)  # 2 Mar 10:00 local is past 09:00
    assert s.next_fire(first, first) == datetime(2026, 3, 16, 1, 0, tzinfo=UTC)


def test_cron_stops_at_its_end() -> None:
    s = Schedule.parse(
        {"kind": "cron", "cron": "0 9 * * *", "end": "2026-03-04T00:00"}, "Asia/Shanghai"
    )
    first = s.first_fire(NOW)
    assert first == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    assert s.next_fire(first, first) is None


def test_daily_cron_keeps_local_time_across_spring_forward() -> None:
    s = Schedule.parse({"kind": "cron", "cron": "0 9 * * *"}, "America/New_York")
    before = s.first_fire(datetime(2026, 3, 7, 15, 0, tzinfo=UTC))
    after = s.next_fire(before, before)
    assert before == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 09:00 EDT (DST began 02:00)
    assert after == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_wall_time_inside_the_dst_gap_fires_once_just_after_it() -> None:
    s = Schedule.parse({"kind": "cron", "cron": "30 2 * * *"}, "America/New_York")
    fire = s.first_fire(datetime(2026, 3, 8, 5, 0, tzinfo=UTC))
    assert fire == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert s.next_fire(fire, fire) == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)


def test_repeated_wall_time_at_fall_back_fires_once() -> None:
    s = Schedule.parse({"kind": "cron", "cron": "30 1 * * *"}, "America/New_York")
    first = s.first_fire(datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    second = s.next_fire(first, first)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, the first of two
    assert second == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)  # next day, 01:30 EST


def test_at_inside_a_dst_gap_becomes_a_real_instant() -> None:
    s = Schedule.parse({"kind": "at", "at": "2026-03-08T02:30"}, "America/New_York")
    fire = s.first_fire(NOW)
    assert fire is not None
    assert fire.astimezone(s.zone).hour == 3


@pytest.mark.parametrize(
    ("spec", "zone"),
    [
        ({"kind": "cron", "cron": "61 9 * * *"}, "Asia/Shanghai"),
        ({"kind": "at", "at": "next tuesday"}, "Asia/Shanghai"),
        ({"kind": "now"}, "Mars/Olympus"),
        ({"kind": "weekly"}, "Asia/Shanghai"),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(spec: dict[str, str], zone: str) -> None:
    with pytest.raises(ScheduleError):
        Schedule.parse(spec, zone)
