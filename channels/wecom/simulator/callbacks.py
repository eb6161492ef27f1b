"""The provider's side of callbacks: plaintext XML for every message and event type,
encrypted and signed exactly as WeCom does, and WeCom's GET URL check."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import aiohttp

from channels.wecom.crypto import signature

from .core import SimApp


def xml_of(fields: Mapping[str, str | int]) -> bytes:
    """`<xml>` with one child per field; strings in CDATA as WeCom writes them."""
    parts = []
    for name, value in fields.items():
        if isinstance(value, int) or value.startswith("<"):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{name}>")
    return ("<xml>" + "".join(parts) + "</xml>").encode()


def text_message_xml(
    app: SimApp, from_user: str, content: str, msg_id: int, create_time: int | None = None
) -> bytes:
    created = create_time if create_time is not None else int(time.time())
    return xml_of(
        {
            "ToUserName": app.corp_id,
            "FromUserName": from_user,
            "CreateTime": created,
            "MsgType": "text",
            "Content": content,
            "MsgId": msg_id,
            "AgentID": app.agent_id,
        }
    )


def event_xml(
    corp_id: str,
    event: str,
    fields: Mapping[str, str | int],
    *,
    from_user: str = "sys",
    create_time: int | None = None,
) -> bytes:
    """A system event (客户联系, 标签, 客户群, 微信客服, 会话存档 notifications)."""
    return xml_of(
        {
            "ToUserName": corp_id,
            "FromUserName": from_user,
            "CreateTime": create_time if create_time is not None else int(time.time()),
            "MsgType": "event",
            "Event": event,
            **fields,
        }
    )


def contact_event_xml(
    corp_id: str, change_type: str, userid: str, external_userid: str, **extra: str | int
) -> bytes:
    """change_external_contact (doc 92130) with its ChangeType."""
    return event_xml(
        corp_id,
        "change_external_contact",
        {"ChangeType": change_type, "UserID": userid, "ExternalUserID": external_userid, **extra},
    )


def kf_event_xml(corp_id: str, open_kfid: str, token: str) -> bytes:
    """kf_msg_or_event (doc 94670): a wake-up carrying the sync_msg token."""
    return event_xml(corp_id, "kf_msg_or_event", {"Token": token, "OpenKfId": open_kfid})


def msgaudit_notify_xml(corp_id: str, agent_id: int) -> bytes:
    """msgaudit_notify (doc 95039): new archived messages can be pulled."""
    return event_xml(corp_id, "msgaudit_notify", {"AgentID": agent_id})


@dataclass(frozen=True)
class SignedCallback:
    query: dict[str, str]
    body: bytes

    def url(self, base: str) -> str:
        return f"{base}?{urlencode(self.query)}"


def sign_callback(
    app: SimApp, plaintext: bytes, *, timestamp: int | None = None, nonce: str | None = None
) -> SignedCallback:
    """Encrypt and sign a callback exactly as WeCom does (envelope with AgentID)."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypt, sig = app.crypto.encrypt_envelope(plaintext, ts, nonce)
    body = (
        f"<xml><ToUserName><![CDATA[{escape(app.corp_id)}]]></ToUserName>"
        f"<AgentID><![CDATA[{app.agent_id}]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()
    return SignedCallback({"msg_signature": sig, "timestamp": ts, "nonce": nonce}, body)


async def post_callback(
    http: aiohttp.ClientSession, url: str, callback: SignedCallback
) -> tuple[int, bytes]:
    """POST a signed callback the way WeCom would; returns (status, body)."""
    async with http.post(
        callback.url(url), data=callback.body, headers={"Content-Type": "text/xml"}
    ) as resp:
        return resp.status, await resp.read()


async def push(http: aiohttp.ClientSession, url: str, app: SimApp, plaintext: bytes) -> int:
    """Encrypt, sign and POST one callback; the HTTP status crmbot answered."""
    status, _ = await post_callback(http, url, sign_callback(app, plaintext))
    return status


async def verify_url(http: aiohttp.ClientSession, url: str, app: SimApp) -> bool:
    """WeCom's GET URL check: the answer must be exactly the decrypted echostr."""
    expected = str(secrets.randbelow(10**19))
    signed = sign_callback(app, expected.encode())
    encrypt = app.crypto.encrypt(expected.encode())
    query = dict(signed.query, echostr=encrypt)
    query["msg_signature"] = signature(app.token, query["timestamp"], query["nonce"], encrypt)
    async with http.get(f"{url}?{urlencode(query)}") as resp:
        return resp.status == 200 and await resp.read() == expected.encode()
