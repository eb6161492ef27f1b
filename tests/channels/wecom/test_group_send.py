"""客户群发 tasks: created through the outbox, confirmed by salespeople in WeCom, polled
per member and per customer (status 0–3), reminded at most 3 times a day, cancelled,
and capped per customer per month."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from channels.wecom.group_send import GroupSendError, GroupSends, create_group_send
from channels.wecom.models import GroupSendMember, GroupSendRecipient, GroupSendTask
from conversations.models import ChannelAccount, OutboxItem
from tests.channels.wecom.world import Account, add_account
from tests.system import System, eventually

CORP = "wwgroupsend001"


async def _api_for(system: System) -> Any:
    async def api_for(account_id: int) -> Any:
        loaded = await system.services.accounts.by_id(account_id)
        assert loaded is not None
        return loaded.adapter.api  # type: ignore[attr-defined]

    return api_for


async def _create(
    system: System, account: Account, key: str, customers: list[str], **kw: Any
) -> int:
    async with system.services.db.transaction() as s:
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        task = await create_group_send(
            s, row, key=key, text="双十一优惠：全场八折", external_userids=customers, **kw
        )
        task_id = task.id
    system.services.dispatcher.wake()
    return task_id


async def _sent_on_wecom(system: System, key: str) -> OutboxItem | None:
    async with system.services.db.reading() as s:
        item = await s.scalar(select(OutboxItem).where(OutboxItem.idempotency_key == key))
        return item if item is not None and item.status in ("sent", "failed") else None


async def test_task_lifecycle_with_confirmation_and_per_customer_results(system: System) -> None:
    account = await add_account(system, "wecom.contact", CORP)
    contacts = system.sim.contacts
    a, _ = contacts.add_customer(CORP, "zhangsan", "A", with_welcome_code=False)
    b, _ = contacts.add_customer(CORP, "zhangsan", "B", with_welcome_code=False)
    c, _ = contacts.add_customer(CORP, "zhangsan", "C", with_welcome_code=False)
    contacts.received[(CORP, c)] = contacts.monthly_cap  # C got other group sends already
    task_id = await _create(
        system, account, "broadcast:7:wecom", [a, b, c], sender="zhangsan", reference="broadcast:7"
    )
    item = await eventually(lambda: _sent_on_wecom(system, "broadcast:7:wecom"))
    assert item.status == "sent"
    sends = GroupSends(system.services.db, await _api_for(system))
    task = await sends.poll(task_id)
    assert (task.status, task.msgid) == ("created", item.provider_message_id)
    contacts.customer_deletes(CORP, "zhangsan", b)  # B leaves before the salesperson confirms
    contacts.confirm_group_send(task.msgid or "", "zhangsan")
    task = await sends.poll(task_id)
    assert task.status == "finished"
    async with system.services.db.reading() as s:
        members = (await s.scalars(select(GroupSendMember))).all()
        results = {
            r.external_userid: r.status for r in (await s.scalars(select(GroupSendRecipient))).all()
        }
    assert [(m.userid, m.status) for m in members] == [("zhangsan", 2)]
    assert results == {a: 1, b: 2, c: 3}
    assert len(contacts.group_sends) == 1


async def test_same_key_creates_one_task(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    a, _ = sqlite_system.sim.contacts.add_customer(CORP, "zhangsan", "A", with_welcome_code=False)
    first = await _create(sqlite_system, account, "k1", [a])
    second = await _create(sqlite_system, account, "k1", [a])
    assert first == second
    await eventually(lambda: _sent_on_wecom(sqlite_system, "k1"))
    assert len(sqlite_system.sim.contacts.group_sends) == 1


async def test_monthly_cap_skips_customers_before_wecom_is_asked(sqlite_system: System) -> None:
    account = await add_account(
        sqlite_system, "wecom.contact", CORP, config={"group_send_monthly_cap": 1}
    )
    a, _ = sqlite_system.sim.contacts.add_customer(CORP, "zhangsan", "A", with_welcome_code=False)
    b, _ = sqlite_system.sim.contacts.add_customer(CORP, "zhangsan", "B", with_welcome_code=False)
    await _create(sqlite_system, account, "m1", [a])
    second = await _create(sqlite_system, account, "m2", [a, b])
    await eventually(lambda: _sent_on_wecom(sqlite_system, "m2"))
    async with sqlite_system.services.db.reading() as s:
        rows = (
            await s.scalars(select(GroupSendRecipient).where(GroupSendRecipient.task_id == second))
        ).all()
    assert {r.external_userid: r.status for r in rows} == {a: -1, b: 0}
    sent_to = [t.external_userids for t in sqlite_system.sim.contacts.group_sends.values()]
    assert [b] in sent_to


async def test_reminders_stop_at_three_per_day(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    a, _ = sqlite_system.sim.contacts.add_customer(CORP, "zhangsan", "A", with_welcome_code=False)
    task_id = await _create(sqlite_system, account, "r1", [a], sender="zhangsan")
    await eventually(lambda: _sent_on_wecom(sqlite_system, "r1"))
    sends = GroupSends(sqlite_system.services.db, await _api_for(sqlite_system))
    await sends.poll(task_id)
    sim = sqlite_system.sim
    elapsed = [0.0]
    started = sim.clock()
    sim.clock = lambda: started + elapsed[0]  # WeCom's clock moves with ours
    for hour in range(3):
        elapsed[0] = hour * 3600
        await sends.remind(task_id, now=1_800_000_000 + elapsed[0])
    with pytest.raises(GroupSendError, match="3"):
        await sends.remind(task_id, now=1_800_000_000 + 4 * 3600)
    elapsed[0] = 25 * 3600
    await sends.remind(task_id, now=1_800_000_000 + elapsed[0])  # a day later: allowed again
    assert len(sim.contacts.group_sends[next(iter(sim.contacts.group_sends))].reminds) == 4
    assert sqlite_system.sim.errors.get(45009, 0) == 0  # WeCom never had to refuse one


async def test_cancelled_task_cannot_be_confirmed(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    a, _ = sqlite_system.sim.contacts.add_customer(CORP, "zhangsan", "A", with_welcome_code=False)
    task_id = await _create(sqlite_system, account, "c1", [a], sender="zhangsan")
    await eventually(lambda: _sent_on_wecom(sqlite_system, "c1"))
    sends = GroupSends(sqlite_system.services.db, await _api_for(sqlite_system))
    task = await sends.poll(task_id)
    await sends.cancel(task_id)
    sqlite_system.sim.contacts.confirm_group_send(task.msgid or "", "zhangsan")
    async with sqlite_system.services.db.reading() as s:
        row = await s.get(GroupSendTask, task_id)
    assert row is not None and row.status == "cancelled"
    assert sqlite_system.sim.contacts.received[(CORP, a)] == 0
