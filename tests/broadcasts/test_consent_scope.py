"""Broadcasts check suppressions under the scope opt-out replies were recorded with."""

from __future__ import annotations

import pytest

from broadcasts.policy import AccountView, SmsPolicy
from conversations.optout import consent_target_of


@pytest.mark.parametrize(
    ("kind", "config", "scope"),
    [
        ("sms.aliyun", {"sign_name": "测试签名"}, "测试签名"),
        ("sms.tencent", {"sign_name": "腾讯签名"}, "腾讯签名"),
        ("sms.twilio", {"from_number": "+14155550100"}, "+14155550100"),
    ],
)
def test_broadcast_scope_is_the_opt_out_scope(
    kind: str, config: dict[str, str], scope: str
) -> None:
    target = consent_target_of(kind, config)
    assert target is not None and target.scope == scope
    assert SmsPolicy().consent_scope(AccountView(1, kind, "acc", config)) == scope


def test_marketing_window_reads_the_documented_table_and_clips_tencent() -> None:
    from datetime import time

    from broadcasts.policy import _window

    aliyun = _window(
        AccountView(1, "sms.aliyun", "a", {"marketing_window": {"start": "09:00", "end": "20:30"}})
    )
    assert (aliyun.start, aliyun.end) == (time(9, 0), time(20, 30))
    tencent = _window(AccountView(2, "sms.tencent", "t", {"marketing_hours": "08:00-23:00"}))
    assert tencent.end == time(22, 0)
    default = _window(AccountView(3, "sms.aliyun", "d", {}))
    assert (default.start, default.end) == (time(8, 0), time(21, 0))
