"""The business-hours editor: weekly hours, time zone, holidays, 调休 working days and
the out-of-hours message of each account, over HTTP and as form parsing."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from admin_web.autoreply_views import hours_data, parse_dates, parse_spans
from autoreply import service
from autoreply.rules import InvalidRule
from conversations.access import Role
from tests.system import System

WEEKDAY_FORM = {f"day{d}": "09:00-12:00, 13:30-18:00" for d in range(5)}


async def _admin(system: System) -> aiohttp.ClientSession:
    await system.add_staff("boss", Role.ADMIN)
    return await system.login("boss")


async def _save(
    http: aiohttp.ClientSession, system: System, fields: dict[str, str]
) -> aiohttp.ClientResponse:
    page = await (await http.get(f"{system.base}/autoreply/hours")).text()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert csrf
    data = {"_csrf": csrf.group(1), "account": str(system.wecom_account_id), **fields}
    return await http.post(f"{system.base}/autoreply/hours", data=data, allow_redirects=False)


async def test_saved_hours_are_stored_for_the_account(sqlite_system: System) -> None:
    http = await _admin(sqlite_system)
    async with http:
        resp = await _save(
            http,
            sqlite_system,
            {
                **WEEKDAY_FORM,
                "timezone": "Asia/Shanghai",
                "holidays": "2026-10-01..2026-10-03",
                "workdays": "2026-10-11",
                "away_text": "下班啦，明早回复您",
            },
        )
        assert resp.status == 302
        assert "saved=1" in resp.headers["Location"]
    async with sqlite_system.services.db.reading() as s:
        row = await service.get_account_settings(s, sqlite_system.wecom_account_id)
    assert row.weekly_hours["0"] == [["09:00", "12:00"], ["13:30", "18:00"]]
    assert "5" not in row.weekly_hours
    assert row.holidays == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert row.workdays == ["2026-10-11"]
    assert row.away_text == "下班啦，明早回复您"


async def test_editor_shows_the_stored_hours_again(sqlite_system: System) -> None:
    http = await _admin(sqlite_system)
    async with http:
        await _save(http, sqlite_system, {**WEEKDAY_FORM, "holidays": "2026-10-01"})
        page = await (
            await http.get(
                f"{sqlite_system.base}/autoreply/hours",
                params={"account": str(sqlite_system.wecom_account_id)},
            )
        ).text()
    assert 'name="day0" value="09:00-12:00, 13:30-18:00"' in page
    assert 'name="day6" value=""' in page
    assert "2026-10-01</textarea>" in page


async def test_todays_holiday_shows_the_account_closed(sqlite_system: System) -> None:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    every_day = {f"day{d}": "00:00-23:59" for d in range(7)}
    http = await _admin(sqlite_system)
    async with http:
        resp = await _save(http, sqlite_system, {**every_day, "holidays": today})
        page = await (await http.get(f"{sqlite_system.base}{resp.headers['Location']}")).text()
    assert 'data-open="no"' in page


async def test_bad_span_is_shown_with_what_was_typed(sqlite_system: System) -> None:
    http = await _admin(sqlite_system)
    async with http:
        resp = await _save(http, sqlite_system, {"day0": "9点到18点"})
        page = await resp.text()
    assert resp.status == 400
    assert "is not HH:MM-HH:MM" in page
    assert 'value="9点到18点"' in page


async def test_unknown_timezone_is_refused(sqlite_system: System) -> None:
    http = await _admin(sqlite_system)
    async with http:
        resp = await _save(http, sqlite_system, {**WEEKDAY_FORM, "timezone": "Mars/Olympus"})
        assert resp.status == 400
        assert "bad business hours" in await resp.text()


async def test_sales_role_may_not_edit_business_hours(sqlite_system: System) -> None:
    await sqlite_system.add_staff("li", Role.SALES)
    http = await sqlite_system.login("li")
    async with http:
        resp = await http.get(f"{sqlite_system.base}/autoreply/hours")
        assert resp.status == 403


def test_spans_accept_chinese_punctuation_and_sort() -> None:
    assert parse_spans("13:30～18:00，9:00-12:00", "Mon") == [
        ["09:00", "12:00"],
        ["13:30", "18:00"],
    ]


def test_holiday_range_expands_to_every_day() -> None:
    assert parse_dates("2026-10-01..2026-10-03\n2026-10-08", "holidays") == [
        "2026-10-01",
        "2026-10-02",
        "2026-10-03",
        "2026-10-08",
    ]


def test_backwards_or_overlong_date_range_is_refused() -> None:
    for text in ("2026-10-07..2026-10-01", "2026-01-01..2027-06-01"):
        with pytest.raises(InvalidRule):
            parse_dates(text, "holidays")


def test_a_day_cannot_be_both_holiday_and_working_day() -> None:
    with pytest.raises(InvalidRule, match="both a holiday and a working day"):
        hours_data({"holidays": "2026-10-01..2026-10-07", "workdays": "2026-10-07"})
