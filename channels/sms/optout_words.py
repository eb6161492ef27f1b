"""The opt-out wording each gateway expects at the end of a marketing SMS.

Aliyun marketing templates end with a reply-T/TD/N instruction that the platform adds
by default (推广短信模板规范); Tencent rejects marketing templates that do not end with
拒收请回复R (InvalidParameterValue.MarketingTemplateWithoutUnsubscribe); international
carriers expect STOP wording. An account may override it with `opt_out_suffix`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_SUFFIX = {
    "sms.aliyun": "回T退订",
    "sms.tencent": "拒收请回复R",
    "sms.twilio": " Reply STOP to opt out",
}

# the gateway itself appends (Aliyun) or requires it inside the approved template (Tencent);
# crmbot appends it itself only where it sends free text (Twilio)
APPENDED_BY = {"sms.aliyun": "gateway", "sms.tencent": "template", "sms.twilio": "crmbot"}


def opt_out_suffix(kind: str, config: Mapping[str, Any]) -> str:
    """The wording that ends this account's marketing texts."""
    override = config.get("opt_out_suffix")
    if isinstance(override, str) and override:
        return override
    return DEFAULT_SUFFIX.get(kind, "回T退订")


def with_suffix(text: str, suffix: str) -> str:
    """`text` ending with `suffix` exactly once."""
    if text.rstrip().endswith(suffix.strip()):
        return text
    return text + suffix
