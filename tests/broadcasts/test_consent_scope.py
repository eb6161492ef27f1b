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
