"""微信客服: callback wake-up → sync_msg pages with the cursor stored after every page,
restarts without loss or duplicates, the 5-per-48-h budget and session-state rules."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from autoreply.models import KeywordRule
from autoreply.store import RULES, bump_versions
from bot.pollers import load_cursors, store_pull_page
from channels.wecom.errors import KF_HANDOFF_CODES
from channels.wecom.kf import STATE_HUMAN, client_msgid, service_state_payload
from channels.wecom.simulator import kf_event_xml, push
from conversations.actions import queue_outbound
from conversations.models import ChannelCursor, Conversation, Message
from conversations.types import AccountRef, MessageKind, Outbound, Purpose, SendOutcome
from tests.channels.wecom.world import Account, add_account, start_poller
from tests.system import System, eventually

CORP = "wwkfcorp000001"


async def _adapter(system: System, account: Account) -> Any:
    loaded = await system.services.accounts.by_id(account.id)
    assert loaded is not None
    return loaded.adapter


def _outbound(adapter: Any, account: Account, key: str, to: str, text: str = "您好") -> Outbound:
    ref: AccountRef = adapter.account
    return Outbound(
        key=key,
        account=ref,
        recipient=to,
        kind=MessageKind.TEXT,
        text=text,
        purpose=Purpose.AUTO_REPLY,
    )


async def _count(system: System, account: Account) -> int:
    async with system.services.db.reading() as s:
        return int(
            await s.scalar(
                select(func.count()).select_from(Message).where(Message.account_id == account.id)
            )
            or 0
        )


async def test_callback_wakes_the_poller_and_the_bot_answers(sqlite_system: System) -> None:
    async with sqlite_system.services.db.transaction() as s:
        s.add(
            KeywordRule(keywords=["价格"], match="contains", replies=["标准版 ¥199/月"], priority=1)
        )
        await bump_versions(s, [RULES])  # as the rule editor does: engines rebuild
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    await start_poller(sqlite_system, account, idle_wait=60)
    sim = sqlite_system.sim
    sim.kf.customer_writes(CORP, account.open_kfid or "", "wmcustomer1", text="请问价格？")
    async with aiohttp.ClientSession() as http:
        status = await push(
            http,
            sqlite_system.callback_url("wecom.kf", account.token),
            account.app,
            kf_event_xml(CORP, account.open_kfid or "", sim.kf.issue_token(CORP)),
        )
    assert status == 200
    sent = await eventually(lambda: _async(sim.kf.sent))
    assert [(m["touser"], m["text"]["content"]) for m in sent] == [
        ("wmcustomer1", "标准版 ¥199/月")
    ]
    assert all(c == "" or c.startswith("c") for c in sim.kf.cursors_seen)


async def _async(value: Any) -> Any:
    return value


async def test_restart_mid_sync_resumes_from_the_stored_cursor(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    sim = sqlite_system.sim
    sim.kf.max_page = 3
    sim.kf.empty_pages = 1  # WeCom may answer an empty page that still has_more
    for i in range(10):
        sim.kf.customer_writes(CORP, account.open_kfid or "", f"wmc{i % 4}", text=f"消息 {i}")
    db = sqlite_system.services.db
    adapter = await _adapter(sqlite_system, account)
    # four pages stored (two of them empty), the next pulled but the process dies
    # before storing it
    for _ in range(4):
        page = await adapter.pull(await load_cursors(db, account.id))
        await store_pull_page(db, account.id, page)
    lost_page = await adapter.pull(await load_cursors(db, account.id))
    assert lost_page.items and lost_page.has_more
    stored_before = await _count(sqlite_system, account)
    cursor_before = (await load_cursors(db, account.id))[f"kf:{account.open_kfid}"]
    # restart: a fresh adapter, and a sync call that fails once more mid-way
    sqlite_system.services.accounts.forget(account.id)
    adapter = await _adapter(sqlite_system, account)
    sim.fail_next["/cgi-bin/kf/sync_msg"] = [95017]
    with pytest.raises(Exception, match="95017"):
        await adapter.pull(await load_cursors(db, account.id))
    calls_after_restart = len(sim.kf.cursors_seen)
    while True:
        page = await adapter.pull(await load_cursors(db, account.id))
        await store_pull_page(db, account.id, page)
        if not page.has_more:
            break
    assert sim.kf.cursors_seen[calls_after_restart] == cursor_before  # resumed, not restarted
    assert stored_before < 10
    async with db.reading() as s:
        texts = (
            await s.scalars(select(Message.text).where(Message.account_id == account.id))
        ).all()
    assert sorted(texts) == sorted(f"消息 {i}" for i in range(10))  # none lost, none twice


async def test_cursor_is_saved_after_an_empty_page_that_has_more(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    sim = sqlite_system.sim
    sim.kf.empty_pages = 1
    sim.kf.customer_writes(CORP, account.open_kfid or "", "wmc", text="hi")
    sim.kf._empty_left = 1
    db = sqlite_system.services.db
    adapter = await _adapter(sqlite_system, account)
    page = await adapter.pull({})
    assert page.items == [] and page.has_more and page.cursor is not None
    await store_pull_page(db, account.id, page)
    async with db.reading() as s:
        assert await s.get(ChannelCursor, (account.id, f"kf:{account.open_kfid}")) is not None


async def test_sixth_message_within_48h_fails_with_a_handoff_code(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    sqlite_system.sim.kf.customer_writes(CORP, account.open_kfid or "", "wmc", text="在吗")
    adapter = await _adapter(sqlite_system, account)
    results = [
        await adapter.send(_outbound(adapter, account, f"reply-{i}", "wmc")) for i in range(6)
    ]
    assert [r.outcome for r in results[:5]] == [SendOutcome.SENT] * 5
    assert results[5].outcome == SendOutcome.FAILED
    assert results[5].error_code == "95001" and results[5].error_code in KF_HANDOFF_CODES
    assert "5" in (results[5].reason or "")


async def test_human_session_state_fails_with_95018_for_handoff(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    sim = sqlite_system.sim
    sim.add_member(CORP, "zhangsan")
    sim.kf.customer_writes(CORP, account.open_kfid or "", "wmc", text="转人工")
    adapter = await _adapter(sqlite_system, account)
    moved = await adapter.send(
        Outbound(
            key="trans-1",
            account=adapter.account,
            recipient="wmc",
            kind=MessageKind.EVENT,
            text="",
            purpose=Purpose.REPLY,
            payload=service_state_payload(STATE_HUMAN, "zhangsan"),
        )
    )
    assert moved.outcome == SendOutcome.SENT
    assert await adapter.service_state("wmc") == (STATE_HUMAN, "zhangsan")
    result = await adapter.send(_outbound(adapter, account, "after-handoff", "wmc"))
    assert (result.outcome, result.error_code) == (SendOutcome.FAILED, "95018")


async def test_same_outbox_key_reaches_kf_once(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    sqlite_system.sim.kf.customer_writes(CORP, account.open_kfid or "", "wmc", text="hi")
    adapter = await _adapter(sqlite_system, account)
    message = _outbound(
        adapter, account, "autoreply:42:very-long-key-with:colons-and-more-than-32", "wmc"
    )
    first = await adapter.send(message)
    again = await adapter.reconcile(message)
    assert first.provider_message_id == again.provider_message_id == client_msgid(message.key)
    assert len(sqlite_system.sim.kf.sent) == 1


async def test_msg_send_fail_event_marks_our_message_failed(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    sim = sqlite_system.sim
    open_kfid = account.open_kfid or ""
    sim.kf.customer_writes(CORP, open_kfid, "wmc", text="hi")
    await start_poller(sqlite_system, account, idle_wait=60)
    async with aiohttp.ClientSession() as http:
        url = sqlite_system.callback_url("wecom.kf", account.token)
        await push(http, url, account.app, kf_event_xml(CORP, open_kfid, sim.kf.issue_token(CORP)))

        async def conversation() -> Conversation | None:
            async with sqlite_system.services.db.reading() as s:
                return await s.scalar(
                    select(Conversation).where(Conversation.account_id == account.id)
                )

        conv = await eventually(conversation)
        async with sqlite_system.services.db.transaction() as s:
            conv = await s.get(Conversation, conv.id)
            queued = await queue_outbound(
                s, conv, text="稍等", purpose=Purpose.REPLY, idempotency_key="manual-1"
            )
            assert queued is not None
            message_id = queued.id
        sqlite_system.services.dispatcher.wake()
        await eventually(lambda: _async(sim.kf.sent))
        sim.kf.system_event(
            CORP,
            {
                "event_type": "msg_send_fail",
                "open_kfid": open_kfid,
                "external_userid": "wmc",
                "fail_msgid": client_msgid("manual-1"),
                "fail_type": 10,
            },
        )
        await push(http, url, account.app, kf_event_xml(CORP, open_kfid, sim.kf.issue_token(CORP)))

    async def failed() -> Message | None:
        async with sqlite_system.services.db.reading() as s:
            msg = await s.get(Message, message_id)
            return msg if msg is not None and msg.status == "failed" else None

    msg = await eventually(failed)
    assert msg.error_code == "kf_fail_10" and "拒收" in (msg.status_reason or "")


async def test_sandbox_scenario_shows_a_kf_conversation(sqlite_system: System) -> None:
    from channels.wecom.simulator.scenarios import kf_customer_writes

    account = await add_account(sqlite_system, "wecom.kf", CORP)
    await start_poller(sqlite_system, account, idle_wait=60)
    async with aiohttp.ClientSession() as http:
        status = await kf_customer_writes(
            http,
            sqlite_system.sim,
            account.app,
            sqlite_system.callback_url("wecom.kf", account.token),
            account.open_kfid or "",
            "wmsandbox",
            "你好，想了解一下产品",
        )
    assert status == 200

    async def conversation() -> Conversation | None:
        async with sqlite_system.services.db.reading() as s:
            return await s.scalar(select(Conversation).where(Conversation.account_id == account.id))

    conv = await eventually(conversation)
    assert conv.last_preview == "你好，想了解一下产品" and conv.unread_count == 1


async def test_connection_check_names_a_kf_account_the_app_does_not_manage(
    sqlite_system: System,
) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    adapter = await _adapter(sqlite_system, account)
    assert (await adapter.check_connection()).ok
    sqlite_system.sim.kf.accounts[CORP].discard(account.open_kfid)
    check = await adapter.check_connection()
    assert not check.ok and (account.open_kfid or "") in check.message


async def test_connection_check_explains_missing_kf_permission(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    sqlite_system.sim.fail_next["/cgi-bin/kf/account/list"] = [48002]
    check = await (await _adapter(sqlite_system, account)).check_connection()
    assert not check.ok and "权限" in check.message


async def test_kf_image_reply_is_uploaded_and_sent(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.kf", CORP)
    sqlite_system.sim.kf.customer_writes(CORP, account.open_kfid or "", "wmc", text="发张图")
    adapter = await _adapter(sqlite_system, account)
    stored = sqlite_system.services.media.put(b"\x89PNG\r\n\x1a\n" + b"\x02" * 64, "price.png")
    result = await adapter.send(
        Outbound(
            key="img-1",
            account=adapter.account,
            recipient="wmc",
            kind=MessageKind.IMAGE,
            text="",
            purpose=Purpose.REPLY,
            payload={"media": {"sha256": stored.sha256, "mime": stored.mime}},
        )
    )
    assert result.outcome == SendOutcome.SENT
    sent = sqlite_system.sim.kf.sent[-1]
    assert sent["msgtype"] == "image" and sent["image"]["media_id"] in sqlite_system.sim.media
