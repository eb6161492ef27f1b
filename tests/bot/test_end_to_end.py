"""Issue 2's whole path over HTTP: simulator callback → stored once → keyword auto-reply
through message/send → inbox with unread count → console reply reaches the simulator."""

from __future__ import annotations

import re

import aiohttp
from sqlalchemy import func, select

from autoreply.models import KeywordRule
from autoreply.store import RULES, bump_versions
from channels.wecom.simulator import post_callback, sign_callback, text_message_xml
from conversations.access import Role
from conversations.models import Conversation, Message
from tests.system import System, eventually


async def _count(system: System, model: type) -> int:
    async with system.services.db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_whole_path_from_callback_to_console_reply(system: System) -> None:
    async with system.services.db.transaction() as s:
        s.add(
            KeywordRule(keywords=["价格"], match="contains", replies=["标准版 ¥199/月"], priority=1)
        )
        await bump_versions(s, [RULES])  # as the rule editor does: engines rebuild
    await system.add_staff("boss", Role.ADMIN)

    signed = sign_callback(
        system.wecom, text_message_xml(system.wecom, "zhangsan", "请问价格多少？", msg_id=7001)
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # WeCom retries: the same callback three times
            status, body = await post_callback(http, system.callback_url(), signed)
            assert (status, body) == (200, b"")

    assert await _count(system, Message) >= 1
    sent = await eventually(lambda: _sent(system))
    assert [(m.touser, m.content) for m in sent] == [("zhangsan", "标准版 ¥199/月")]
    async with system.services.db.reading() as s:
        inbound = (await s.scalars(select(Message).where(Message.direction == "in"))).all()
        assert len(inbound) == 1
        conv = (await s.scalars(select(Conversation))).one()
        assert conv.unread_count == 1

    console = await system.login("boss")
    try:
        inbox = await (await console.get(f"{system.base}/inbox")).text()
        assert re.search(r'class="badge unread-count">1<', inbox), inbox
        page = await (await console.get(f"{system.base}/conversations/{conv.id}")).text()
        assert "请问价格多少？" in page and "标准版 ¥199/月" in page
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
        assert csrf
        resp = await console.post(
            f"{system.base}/conversations/{conv.id}/reply",
            data={
                "_csrf": csrf.group(1),
                "text": "我是销售小王，稍后发您报价单",
                "idempotency_key": "k1",
            },
            allow_redirects=False,
        )
        assert resp.status == 302
        await eventually(lambda: _sent(system, 2))
        assert system.sim.sent[-1].content == "我是销售小王，稍后发您报价单"
        # opening the conversation read it
        inbox = await (await console.get(f"{system.base}/inbox")).text()
        assert not re.search(r'class="badge unread-count">', inbox)
    finally:
        await console.close()


async def _sent(system: System, n: int = 1) -> list:
    return system.sim.sent if len(system.sim.sent) >= n else []


async def test_reply_without_csrf_is_refused(system: System) -> None:
    await system.add_staff("boss", Role.ADMIN)
    console = await system.login("boss")
    try:
        resp = await console.post(
            f"{system.base}/conversations/1/reply", data={"text": "x"}, allow_redirects=False
        )
        assert resp.status == 403
    finally:
        await console.close()
