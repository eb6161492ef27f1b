"""SMS segment counting and the text the customer actually receives."""

from __future__ import annotations

from datetime import UTC, datetime

from broadcasts.policy import AccountView, MarketingWindow, PolicyRegistry
from broadcasts.segments import CharacterSegments, GsmSegments


def test_gsm7_fits_160_then_153_per_part() -> None:
    assert GsmSegments().count("a" * 160) == 1
    assert GsmSegments().count("a" * 161) == 2
    assert GsmSegments().count("a" * 306) == 2
    assert GsmSegments().count("a" * 307) == 3


def test_gsm7_extension_characters_take_two_septets() -> None:
    assert GsmSegments().count("€" * 80) == 1
    assert GsmSegments().count("€" * 81) == 2


def test_one_chinese_character_switches_to_ucs2_70_67() -> None:
    assert GsmSegments().count("a" * 69 + "你") == 1
    assert GsmSegments().count("a" * 70 + "你") == 2
    assert GsmSegments().count("你" * 134) == 2
    assert GsmSegments().count("你" * 135) == 3


def test_emoji_counts_as_two_ucs2_units() -> None:
    assert GsmSegments().count("😀" * 35) == 1
    assert GsmSegments().count("😀" * 36) == 2


def test_chinese_gateways_count_characters_70_then_67() -> None:
    assert CharacterSegments().count("你" * 70) == 1
    assert CharacterSegments().count("你" * 71) == 2
    assert CharacterSegments().count("a" * 135) == 3


def test_signature_and_opt_out_suffix_are_billed() -> None:
    policy = PolicyRegistry().for_kind("sms.aliyun")
    assert policy is not None
    account = AccountView(1, "sms.aliyun", "阿里云", {"sign_name": "测试商城"})
    text = policy.finalise(account, "你" * 60, marketing=True)
    assert text == "【测试商城】" + "你" * 60 + "回T退订"
    assert len(text) == 70
    assert policy.estimate(account, text).segments == 1
    assert policy.estimate(account, policy.finalise(account, "你" * 61, True)).segments == 2


def test_tencent_marketing_ends_with_its_required_suffix() -> None:
    policy = PolicyRegistry().for_kind("sms.tencent")
    assert policy is not None
    account = AccountView(2, "sms.tencent", "腾讯云", {"sign_name": "测试"})
    assert policy.finalise(account, "新品上市", True).endswith("拒收请回复R")
    assert not policy.finalise(account, "您的验证码", False).endswith("拒收请回复R")


def test_aliyun_marketing_template_with_variables_is_refused_before_scheduling() -> None:
    policy = PolicyRegistry().for_kind("sms.aliyun")
    assert policy is not None
    account = AccountView(1, "sms.aliyun", "阿里云", {})
    problems = policy.validate(account, {"text": "{customer_name}您好"}, marketing=True)
    assert problems and "variables" in problems[0]


def test_marketing_window_defers_to_next_local_opening() -> None:
    window = MarketingWindow.parse("08:00-21:00", "Asia/Shanghai")
    late = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    assert window.next_allowed(late) == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    inside = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert window.next_allowed(inside) == inside
