"""A broadcast to 客户联系 customers, end to end on the simulator: the scheduler makes one
group-send task per salesperson, the outbox creates it on WeCom, the salesperson
confirms, polling brings each customer's result back, and the broadcast page shows it."""

from __future__ import annotations

from sqlalchemy import select

from bot.jobs import wecom_api_for
from broadcasts.audience import AudienceRegistry
from broadcasts.control import Draft, create_broadcast, submit
from broadcasts.models import BroadcastRecipient
from broadcasts.policy import PolicyRegistry
from channels.wecom.customers import upsert_follow
from channels.wecom.group_send import GroupSends
from conversations.access import Role
from conversations.db import utcnow
from conversations.models import ChannelAccount
from tests.channels.wecom.world import add_account
from tests.system import System, eventually

CORP = "wwbroadcasttask1"


async def test_broadcast_to_wecom_customers_runs_as_confirmed_group_send_tasks(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    account = await add_account(system, "wecom.contact", CORP)
    contacts = system.sim.contacts
    system.sim.add_member(CORP, "lisi")
    people = {"zhangsan": "wmA", "lisi": "wmB"}
    customers = {}
    for userid in people:
        ext, _ = contacts.add_customer(CORP, userid, f"客户{userid}", with_welcome_code=False)
        people[userid] = ext
    async with system.services.db.transaction() as s:
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        for userid, ext in people.items():
            customers[userid] = (await upsert_follow(s, row, ext, userid)).customer_id
        draft = Draft(
            name="双十一",
            audience={"kind": "customers", "customer_ids": list(customers.values())},
            content={"wecom": {"msgtype": "text", "text": "双十一全场八折"}},
            channel_order=[account.id],
        )
        broadcast = await create_broadcast(s, draft, actor_id=None)
        await submit(
            s,
            broadcast,
            actor_id=None,
            policies=PolicyRegistry(),
            audiences=AudienceRegistry(),
            now=utcnow(),
        )
        broadcast_id = broadcast.id

    async def two_tasks_on_wecom() -> bool:
        return len(contacts.group_sends) == 2

    await eventually(two_tasks_on_wecom, timeout=20)
    assert sorted(t.sender for t in contacts.group_sends.values()) == ["lisi", "zhangsan"]
    polls = GroupSends(system.services.db, wecom_api_for(system.services.accounts))

    async def tasks_created() -> bool:
        await polls.poll_open()
        async with system.services.db.reading() as s:
            from channels.wecom.models import GroupSendTask

            return all(t.msgid for t in await s.scalars(select(GroupSendTask)))

    await eventually(tasks_created)
    zhangsan_task = next(t for t in contacts.group_sends.values() if t.sender == "zhangsan")
    contacts.confirm_group_send(zhangsan_task.msgid, "zhangsan")
    await polls.poll_open()

    async def statuses() -> dict[int, str] | None:
        async with system.services.db.reading() as s:
            rows = {r.customer_id: r.status for r in await s.scalars(select(BroadcastRecipient))}
        return rows if "sent" in rows.values() else None

    found = await eventually(statuses)
    assert found == {customers["zhangsan"]: "sent", customers["lisi"]: "queued"}

    await system.add_staff("boss", Role.ADMIN)
    http = await system.login("boss")
    try:
        page = await (await http.get(f"{system.base}/broadcasts/{broadcast_id}")).text()
    finally:
        await http.close()
    assert 'data-sender="zhangsan"' in page and 'data-sender="lisi"' in page
    assert "已确认发送" in page and "等待成员确认" in page
