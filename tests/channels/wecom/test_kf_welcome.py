"""微信客服 enter_session: the account's welcome goes with kf/send_msg_on_event, once,
within the welcome_code's 20 s, and the customer's first message is not welcomed again."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from autoreply.service import save_account_settings
from channels.wecom.simulator import kf_event_xml, push
from conversations.models import Message
from tests.channels.wecom.world import Account, add_account, start_poller
from tests.system import System, eventually

CORP = "wwkfwelcome0001"


async def _kf_with_welcome(system: System) -> Account:
    account = await add_account(system, "wecom.kf", CORP)
    async with system.services.db.transaction() as s:
        await save_account_settings(
            s, account.id, {"welcome_text": "您好，欢迎咨询！"}, actor_id=None
        )
    await start_poller(system, account, idle_wait=60)
    return account


async def _wake(system: System, account: Account) -> None:
    async with aiohttp.ClientSession() as http:
        await push(
            http,
            system.callback_url("wecom.kf", account.token),
            account.app,
            kf_event_xml(CORP, account.open_kfid or "", system.sim.kf.issue_token(CORP)),
        )


async def test_enter_session_welcome_is_sent_with_send_msg_on_event(sqlite_system: System) -> None:
    account = await _kf_with_welcome(sqlite_system)
    kf = sqlite_system.sim.kf
    code = kf.customer_enters(CORP, account.open_kfid or "", "wmnewcustomer")
    await _wake(sqlite_system, account)

    async def welcomed() -> list[dict[str, object]]:
        return kf.event_sends

    sent = await eventually(welcomed)
    assert [(m["code"], m["text"]) for m in sent] == [(code, {"content": "您好，欢迎咨询！"})]
    assert kf.welcome_codes[code][4]  # the code is used up
    kf.customer_writes(CORP, account.open_kfid or "", "wmnewcustomer", text="在吗")
    await _wake(sqlite_system, account)

    async def first_message_handled() -> bool:
        async with sqlite_system.services.db.reading() as s:
            row = await s.scalar(select(Message).where(Message.text == "在吗"))
            return row is not None and row.processed_at is not None

    await eventually(first_message_handled)
    assert not any(m.get("text") == {"content": "您好，欢迎咨询！"} for m in kf.sent)
    assert len(kf.event_sends) == 1


async def test_a_welcome_after_the_20s_window_is_not_attempted(sqlite_system: System) -> None:
    account = await _kf_with_welcome(sqlite_system)
    kf = sqlite_system.sim.kf
    clock = sqlite_system.sim.clock
    kf.customer_enters(CORP, account.open_kfid or "", "wmlatecomer")
    # the event was stamped long ago (a poller down for a minute): the window is gone
    for item in kf.log[CORP]:
        item["send_time"] = int(clock()) - 60
    await _wake(sqlite_system, account)

    async def refused() -> Message | None:
        async with sqlite_system.services.db.reading() as s:
            return await s.scalar(select(Message).where(Message.status == "failed"))

    failed = await eventually(refused)
    assert "20" in (failed.status_reason or "")
    assert kf.event_sends == []
