"""Business hours: timezone, holidays, 调休 workdays."""

from __future__ import annotations

from datetime import UTC, datetime

from autoreply.hours import BusinessHours

HOURS = BusinessHours.from_json(
    "Asia/Shanghai",
    {str(d): [["09:00", "12:00"], ["13:30", "18:00"]] for d in range(5)},
    holidays=["2026-10-01"],
    workdays=["2026-10-11"],  # a Sunday worked after the National Day holiday
)


def test_open_inside_weekday_hours_in_local_time() -> None:
    assert HOURS.is_open(datetime(2026, 11, 23, 1, 30, tzinfo=UTC))  # 09:30 Shanghai


def test_closed_during_lunch_break() -> None:
    assert not HOURS.is_open(datetime(2026, 11, 23, 4, 45, tzinfo=UTC))  # 12:45 Shanghai


def test_closed_on_weekend() -> None:
    assert not HOURS.is_open(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))  # Sunday 10:00


def test_closed_on_holiday() -> None:
    assert not HOURS.is_open(datetime(2026, 10, 1, 2, 0, tzinfo=UTC))  # Thursday 10:00


def test_open_on_worked_weekend_day() -> None:
    assert HOURS.is_open(datetime(2026, 10, 11, 2, 0, tzinfo=UTC))  # Sunday 10:00, 调休


def test_hours_follow_the_account_timezone() -> None:
    berlin = BusinessHours.from_json("Europe/Berlin", {"0": [["09:00", "18:00"]]})
    monday_0830_utc = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)  # 09:30 Berlin, 16:30 Shanghai
    assert berlin.is_open(monday_0830_utc)
    assert not berlin.is_open(datetime(2026, 11, 23, 1, 30, tzinfo=UTC))  # 02:30 Berlin


def test_no_weekly_hours_means_always_open() -> None:
    assert BusinessHours.from_json("Asia/Shanghai", {}).is_open(datetime(2026, 11, 22, tzinfo=UTC))
