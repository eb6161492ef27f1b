"""Segment counting: GSM-7 160/153, UCS-2 70/67, Chinese billing with 【签名】 and suffix."""

from __future__ import annotations

import pytest

from channels.sms.preview import preview_sms
from channels.sms.segments import Billing, Encoding, count_segments
from conversations.types import Purpose


@pytest.mark.parametrize(("length", "parts"), [(160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm7_limits(length: int, parts: int) -> None:
    count = count_segments("a" * length)
    assert count.encoding == Encoding.GSM7 and count.segments == parts


def test_gsm7_extension_characters_cost_two() -> None:
    assert count_segments("€" * 80).units == 160
    assert count_segments("€" * 81).segments == 2


@pytest.mark.parametrize(("length", "parts"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_limits(length: int, parts: int) -> None:
    count = count_segments("中" * length)
    assert count.encoding == Encoding.UCS2 and count.segments == parts


def test_emoji_outside_the_bmp_counts_two() -> None:
    assert count_segments("😀" * 35).units == 70 and count_segments("😀" * 36).segments == 2


def test_china_billing_counts_the_signature() -> None:
    assert count_segments("【测试签名】" + "好" * 64, Billing.CHINA).segments == 1
    assert count_segments("【测试签名】" + "好" * 65, Billing.CHINA).segments == 2
    assert count_segments("x" * 150, Billing.CHINA).segments == 3  # 67 + 67 + 16


def test_preview_adds_signature_and_opt_out_wording_for_marketing() -> None:
    config = {"sign_name": "测试签名", "price_per_segment": 0.04,
              "templates": [{"code": "M1", "kind": "marketing", "text": "好" * 57}]}  # fmt: skip
    preview = preview_sms("sms.aliyun", config, purpose=Purpose.MARKETING, template_code="M1")
    assert preview.text == "【测试签名】" + "好" * 57 + "回T退订"  # 70 characters
    assert preview.count.segments == 1 and preview.cost == 0.04
    notice = preview_sms("sms.aliyun", config, purpose=Purpose.REPLY, template_code="M1")
    assert not notice.text.endswith("回T退订")


def test_preview_shows_why_a_personalised_aliyun_marketing_text_cannot_go() -> None:
    config = {
        "sign_name": "s",
        "templates": [{"code": "M2", "kind": "marketing", "text": "${name}五折"}],
    }
    preview = preview_sms("sms.aliyun", config, purpose=Purpose.MARKETING, template_code="M2",
                          params={"name": "王"})  # fmt: skip
    assert [p.key for p in preview.problems] == ["sms.template.marketing_variables"]
