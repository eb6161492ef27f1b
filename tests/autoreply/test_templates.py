"""Reply templates: variables and content per channel."""

from __future__ import annotations

from autoreply.templates import ReplyVariant, render
from conversations.types import MessageKind

VALUES = {"customer_name": "<王>", "salesperson_name": "李销售"}


def test_known_variables_are_filled() -> None:
    variant = ReplyVariant.from_json("{customer_name}您好，我是{salesperson_name}")
    assert render(variant.content_for("sms.aliyun"), VALUES).text == "<王>您好，我是李销售"


def test_unknown_placeholder_stays_visible() -> None:
    variant = ReplyVariant.from_json("您好 {nickname}")
    assert render(variant.content_for("sms"), VALUES).text == "您好 {nickname}"


def test_attribute_access_is_not_evaluated() -> None:
    variant = ReplyVariant.from_json("{customer_name.__class__}")
    assert render(variant.content_for("sms"), VALUES).text == "{customer_name.__class__}"


def test_channel_family_content_is_chosen() -> None:
    variant = ReplyVariant.from_json(
        {
            "text": "价格表见官网",
            "channels": {
                "wecom": {"kind": "rich", "payload": {"msgtype": "news", "title": "价格表"}}
            },
        }
    )
    content = variant.content_for("wecom.kf")
    assert content.kind is MessageKind.RICH and content.payload["msgtype"] == "news"
    assert variant.content_for("sms.tencent").kind is MessageKind.TEXT


def test_html_payload_escapes_variable_values() -> None:
    variant = ReplyVariant.from_json(
        {
            "text": "x",
            "channels": {"email": {"kind": "email", "payload": {"html": "<p>{customer_name}</p>"}}},
        }
    )
    assert render(variant.content_for("email"), VALUES).payload["html"] == "<p>&lt;王&gt;</p>"
