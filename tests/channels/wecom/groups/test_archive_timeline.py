"""With the message archive on, archived group messages (records with a roomid) show in
their group's timeline, read-only and attributed to the member who wrote them."""

from __future__ import annotations

from sqlalchemy import select

from bot.pollers import load_cursors, store_pull_page
from channels.wecom.groups.models import CustomerGroup, GroupMessage
from channels.wecom.groups.queries import group_page
from channels.wecom.groups.sync import run_group_sync
from conversations.models import Message
from tests.channels.wecom.groups.scene import api_of, contact_account
from tests.channels.wecom.world import Account, add_account
from tests.system import System, eventually

CORP = "wwgrouparch0001"
CUSTOMER = "wmArchCustomer0001"


async def _pull(system: System, archive: Account) -> None:
    loaded = await system.services.accounts.by_id(archive.id)
    assert loaded is not None
    page = await loaded.adapter.pull(await load_cursors(system.services.db, archive.id))  # type: ignore[attr-defined]
    result = await store_pull_page(system.services.db, archive.id, page)
    await system.services.pipeline.publish(result)


async def test_archived_group_messages_form_the_group_timeline(sqlite_system: System) -> None:
    contact = await contact_account(sqlite_system, CORP)
    archive = await add_account(sqlite_system, "wecom.archive", CORP)
    sim = sqlite_system.sim
    group = sim.groups.create_group(CORP, "zhangsan", "VIP 群", members=[CUSTOMER])
    await run_group_sync(
        sqlite_system.services.db, contact.id, await api_of(sqlite_system, contact)
    )
    sim.archive.chat(CORP, CUSTOMER, "zhangsan", text="请问有优惠吗", roomid=group.chat_id)
    sim.archive.chat(CORP, "zhangsan", CUSTOMER, text="本周八折", roomid=group.chat_id)
    sim.archive.chat(CORP, CUSTOMER, "zhangsan", text="私聊一句")  # not a group message
    await _pull(sqlite_system, archive)

    async def both_linked() -> bool:
        async with sqlite_system.services.db.reading() as s:
            return len((await s.scalars(select(GroupMessage))).all()) == 2

    await eventually(both_linked)
    async with sqlite_system.services.db.reading() as s:
        group_id = await s.scalar(select(CustomerGroup.id))
        assert group_id is not None
        page = await group_page(s, group_id)
        private = (await s.scalars(select(Message.text))).all()
    assert page is not None
    assert [(m.sender, m.sender_type, m.text) for m in page.timeline] == [
        (CUSTOMER, 2, "请问有优惠吗"),
        ("zhangsan", 1, "本周八折"),
    ]
    assert list(private) == ["私聊一句"]  # the 1:1 chat stays in the customer's timeline
