"""The WeCom callback endpoint under bad input (issue 2 'Bad input', issue 11 details)."""

from __future__ import annotations

import io
import secrets

import aiohttp
from sqlalchemy import func, select

from channels.wecom.simulator import post_callback, sign_callback, text_message_xml, verify_url
from conversations.models import ChannelEvent, Message
from tests.system import System


async def _messages(system: System) -> int:
    async with system.services.db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(Message)) or 0)


async def test_url_verification_answers_the_bare_echostr(sqlite_system: System) -> None:
    async with aiohttp.ClientSession() as http:
        assert await verify_url(http, sqlite_system.callback_url(), sqlite_system.wecom)


async def test_url_verification_with_wrong_signature_is_403(sqlite_system: System) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(
            sqlite_system.callback_url(),
            params={"msg_signature": "0" * 40, "timestamp": "1", "nonce": "2", "echostr": "abcd"},
        )
        assert resp.status == 403


async def test_wrong_signature_is_403_and_stores_nothing(sqlite_system: System) -> None:
    signed = sign_callback(
        sqlite_system.wecom, text_message_xml(sqlite_system.wecom, "zhangsan", "hi", msg_id=1)
    )
    signed.query["msg_signature"] = "f" * 40
    async with aiohttp.ClientSession() as http:
        status, _ = await post_callback(http, sqlite_system.callback_url(), signed)
    assert status == 403
    assert await _messages(sqlite_system) == 0


async def test_unknown_callback_token_is_403(sqlite_system: System) -> None:
    signed = sign_callback(
        sqlite_system.wecom, text_message_xml(sqlite_system.wecom, "zhangsan", "hi", msg_id=1)
    )
    async with aiohttp.ClientSession() as http:
        status, _ = await post_callback(http, sqlite_system.callback_url(token="nope"), signed)
    assert status == 403


async def test_malformed_xml_is_400(sqlite_system: System) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            sqlite_system.callback_url() + "?msg_signature=a&timestamp=1&nonce=2",
            data=b"<xml><Encrypt>",
        )
        assert resp.status == 400


async def test_xml_entity_bomb_is_refused_before_parsing(sqlite_system: System) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<xml><Encrypt>&lol2;</Encrypt></xml>"
    )
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            sqlite_system.callback_url() + "?msg_signature=a&timestamp=1&nonce=2", data=bomb
        )
        assert resp.status == 400


async def test_oversized_body_is_413(sqlite_system: System) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            sqlite_system.callback_url() + "?msg_signature=a&timestamp=1&nonce=2",
            data=io.BytesIO(b"<xml>" + b"a" * 2_000_000),
        )
        assert resp.status == 413


async def test_garbage_ciphertext_with_valid_signature_is_400(sqlite_system: System) -> None:
    from channels.wecom.crypto import signature

    enc = "QUJD" * 10
    ts, nonce = "1700000000", "42"
    sig = signature(sqlite_system.wecom.token, ts, nonce, enc)
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            sqlite_system.callback_url(),
            params={"msg_signature": sig, "timestamp": ts, "nonce": nonce},
            data=f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode(),
        )
        assert resp.status == 400


async def test_unknown_message_type_is_stored_raw_and_acknowledged(sqlite_system: System) -> None:
    app = sqlite_system.wecom
    plain = (
        f"<xml><ToUserName>{app.corp_id}</ToUserName><FromUserName>zhangsan</FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType>hologram</MsgType><MsgId>99</MsgId></xml>"
    ).encode()
    async with aiohttp.ClientSession() as http:
        status, _ = await post_callback(
            http, sqlite_system.callback_url(), sign_callback(app, plain)
        )
    assert status == 200
    async with sqlite_system.services.db.reading() as s:
        msg = (await s.scalars(select(Message))).one()
        assert msg.kind == "unknown" and "hologram" in msg.raw


async def test_events_without_msgid_dedupe_by_plaintext_hash(sqlite_system: System) -> None:
    """客户联系 events come from `sys` and share CreateTime: two different events in one
    second are two rows; the same event delivered twice is one."""
    app = sqlite_system.wecom

    def event(external: str) -> bytes:
        return (
            f"<xml><ToUserName>{app.corp_id}</ToUserName><FromUserName>sys</FromUserName>"
            f"<CreateTime>1700000000</CreateTime><MsgType>event</MsgType><Event>change_external_contact</Event>"
            f"<ChangeType>edit_external_contact</ChangeType><UserID>zhangsan</UserID>"
            f"<ExternalUserID>{external}</ExternalUserID></xml>"
        ).encode()

    async with aiohttp.ClientSession() as http:
        for ext in ("wmA", "wmB", "wmA"):
            status, _ = await post_callback(
                http,
                sqlite_system.callback_url(),
                sign_callback(app, event(ext), nonce=str(secrets.randbelow(10**9))),
            )
            assert status == 200
    async with sqlite_system.services.db.reading() as s:
        events = (await s.scalars(select(ChannelEvent))).all()
    assert sorted(e.external_id or "" for e in events) == ["wmA", "wmB"]
    assert {e.event_type for e in events} == {"wecom.change_external_contact.edit_external_contact"}
