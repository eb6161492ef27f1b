"""Which salesperson(s) a code offers: round robin, schedules, daily limits, backup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from channels.wecom.codes.rota import Rota, RotaMember
from channels.wecom.codes.service import CodeDraft, CodeError
from tests.channels.wecom.codes.world import draft

# Tuesday 2026-11-24 10:00 in Shanghai
TUESDAY_10 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SUNDAY_10 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
LISI, WANGWU = RotaMember("lisi"), RotaMember("wangwu")


def test_round_robin_offers_the_member_after_the_one_just_added() -> None:
    rota = Rota("single", "round_robin", (LISI, WANGWU))
    assert rota.users_now(TUESDAY_10, {}) == ["lisi"]
    assert rota.users_now(TUESDAY_10, {}, last_userid="lisi") == ["wangwu"]
    assert rota.users_now(TUESDAY_10, {}, last_userid="wangwu") == ["lisi"]


def test_schedule_offers_the_first_member_on_duty() -> None:
    weekdays = RotaMember("lisi", weekdays=(0, 1, 2, 3, 4), start_hour=9, end_hour=18)
    weekend = RotaMember("wangwu", weekdays=(5, 6))
    rota = Rota("single", "schedule", (weekdays, weekend))
    assert rota.users_now(TUESDAY_10, {}, last_userid="lisi") == ["lisi"]
    assert rota.users_now(SUNDAY_10, {}) == ["wangwu"]


def test_member_at_daily_limit_is_skipped() -> None:
    rota = Rota("single", "round_robin", (RotaMember("lisi", daily_limit=2), WANGWU))
    assert rota.users_now(TUESDAY_10, {"lisi": 2}, last_userid="wangwu") == ["wangwu"]


def test_backup_takes_over_when_nobody_is_eligible() -> None:
    office = RotaMember("lisi", weekdays=(0, 1, 2, 3, 4))
    rota = Rota("single", "schedule", (office,), backup_userid="zhaoliu")
    assert rota.users_now(SUNDAY_10, {}) == ["zhaoliu"]


def test_without_backup_the_current_list_stays() -> None:
    rota = Rota("single", "schedule", (RotaMember("lisi", daily_limit=1),))
    assert rota.users_now(TUESDAY_10, {"lisi": 1}, current=["lisi"]) == ["lisi"]


def test_multi_code_offers_everyone_eligible() -> None:
    full = RotaMember("zhaoliu", daily_limit=1)
    rota = Rota("multi", "round_robin", (LISI, WANGWU, full))
    assert rota.users_now(TUESDAY_10, {"zhaoliu": 1}) == ["lisi", "wangwu"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"state": "x" * 31}, "1–30"),
        ({"state": "海报"}, "1–30"),
        ({"members": ()}, "at least one member"),
        ({"members": (LISI, LISI)}, "twice"),
        ({"welcome_text": "长" * 1400}, "4000 bytes"),
        ({"welcome_attachments": ({"msgtype": "video", "video": {}},)}, "miniprogram"),
        ({"members": (RotaMember("lisi", start_hour=18, end_hour=9),)}, "schedule"),
    ],
)
def test_definitions_wecom_would_refuse_are_named(changes: dict[str, object], words: str) -> None:
    with pytest.raises(CodeError, match=words):
        draft(**changes)


def test_a_valid_definition_builds() -> None:
    assert isinstance(draft(state="a" * 30), CodeDraft)
