"""Cross-check against wechatpy 2.0.0a26 (the pinned SDK, issue 11): it decrypts what we
encrypt, and it reads the documented callbacks as the same message/event we do."""

from __future__ import annotations

from pathlib import Path

import pytest
from wechatpy.work import parse_message
from wechatpy.work.crypto import WeChatCrypto

from channels.wecom.crypto import WeComCrypto
from channels.wecom.inbound import to_inbound
from conversations.types import InboundEvent, InboundMessage

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"


def test_wechatpy_decrypts_our_callbacks() -> None:
    ours = WeComCrypto(TOKEN, KEY, CORP)
    plaintext = "<xml><ToUserName>c</ToUserName><FromUserName>zhangsan</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>你好，价格？</Content><MsgId>9</MsgId><AgentID>1</AgentID></xml>"
    encrypt, sig = ours.encrypt_envelope(plaintext.encode(), "1700000000", "123")
    body = f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    decrypted = WeChatCrypto(TOKEN, KEY, CORP).decrypt_message(body, sig, "1700000000", "123")
    assert decrypted == plaintext


def _strip_comment(raw: str) -> str:
    return raw.split("-->", 1)[1].strip() if raw.lstrip().startswith("<!--") else raw


@pytest.mark.parametrize(
    "fixture",
    sorted(
        p.name
        for p in FIXTURES.glob("*.xml")
        if p.name.startswith(("message_", "add_", "edit_", "del_", "change_external_contact"))
    ),
)
def test_wechatpy_reads_the_fixture_as_we_do(fixture: str) -> None:
    raw = _strip_comment((FIXTURES / fixture).read_text(encoding="utf-8"))
    ours = to_inbound(raw.encode())
    sdk = parse_message(raw)
    if isinstance(ours, InboundMessage):
        assert sdk.type in (ours.kind.value, "shortvideo")
        assert str(sdk.id) == (ours.provider_message_id or "")
        assert sdk.source == ours.external_id
    else:
        assert isinstance(ours, InboundEvent)
        assert ours.event_type.startswith(f"wecom.{sdk.event}")
        change = getattr(sdk, "change_type", None)
        if change:
            assert ours.event_type.endswith(change)
