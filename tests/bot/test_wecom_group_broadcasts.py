"""A broadcast to WeCom customer groups (客户群群发), end to end on the simulator: the
run freezes one row per group of the chosen owners, the scheduler makes ONE chat_type
group task per owner, the owner sends it to some groups, polling brings each group's
result back (sent / not sent / failed) into the run's results and export; the page's
task controls remind and cancel."""

from __future__ import annotations

import re

import aiohttp
from sqlalchemy import select

from admin_web.broadcast_views import BROADCAST_CONSOLE_KEY
from bot.jobs import wecom_api_for
from bot.wecom_group_broadcasts import register_group_audience
from bot.wecom_tasks import WeComTaskControls
from broadcasts.control import Draft, create_broadcast, submit
from broadcasts.models import Broadcast, BroadcastRecipient, BroadcastRun
from channels.wecom.group_send import GroupSends
from channels.wecom.groups.models import CustomerGroup
from channels.wecom.groups.sync import run_group_sync
from channels.wecom.models import GroupSendTask
from conversations.access import Role
from conversations.db import utcnow
from tests.channels.wecom.groups.scene import api_of, contact_account
from tests.system import System, eventually

CORP = "wwgroupbcast001"


async def _groups_world(system: System) -> tuple[int, dict[str, str]]:
    """zhangsan owns 群A and 群B, lisi owns 群C, wangwu (not chosen) 群D; 群E of
    zhangsan is dismissed in crmbot's table."""
    account = await contact_account(system, CORP)
    sim = system.sim.groups
    chats = {
        name: sim.create_group(CORP, owner, name, members=[f"wm{name}"]).chat_id
        for name, owner in (("群A", "zhangsan"), ("群B", "zhangsan"), ("群C", "lisi"))
    }
    sim.create_group(CORP, "wangwu", "群D")
    gone = sim.create_group(CORP, "zhangsan", "群E")
    await run_group_sync(system.services.db, account.id, await api_of(system, account))
    async with system.services.db.transaction() as s:
        row = await s.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == gone.chat_id))
        assert row is not None
        row.dismissed_at = utcnow()
    gone.dismissed = True
    register_group_audience(system.services.audiences)
    return account.id, chats


async def _broadcast(system: System, account_id: int, **audience: object) -> int:
    async with system.services.db.transaction() as s:
        broadcast = await create_broadcast(
            s,
            Draft(
                name="社群周末活动",
                audience={"kind": "wecom_groups", "account_id": account_id, **audience},
                content={"wecom": {"msgtype": "text", "text": "本周末社群专享价"}},
                channel_order=[account_id],
            ),
            actor_id=None,
        )
        await submit(
            s,
            broadcast,
            actor_id=None,
            policies=system.services.policies,
            audiences=system.services.audiences,
            now=utcnow(),
        )
        return broadcast.id


async def _created(system: System, polls: GroupSends, count: int) -> bool:
    await polls.poll_open()
    async with system.services.db.reading() as s:
        tasks = (await s.scalars(select(GroupSendTask))).all()
    return len(tasks) == count and all(t.msgid for t in tasks)


async def _rows(system: System) -> dict[str, tuple[str, str | None]]:
    async with system.services.db.reading() as s:
        rows = (await s.scalars(select(BroadcastRecipient))).all()
    return {r.address or "": (r.status, r.skip_reason or r.error) for r in rows}


async def test_group_broadcast_makes_one_group_task_per_owner_with_per_group_results(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    account_id, chats = await _groups_world(system)
    await _broadcast(system, account_id, owners=["zhangsan", "lisi"])
    polls = GroupSends(system.services.db, wecom_api_for(system.services.accounts))
    await eventually(lambda: _created(system, polls, 2), timeout=20)
    on_wecom = {t.sender: t for t in system.sim.contacts.group_sends.values()}
    assert sorted(on_wecom) == ["lisi", "zhangsan"]
    assert {t.chat_type for t in on_wecom.values()} == {"group"}
    # no groups picked: no chat_id_list, WeCom offers every group of the owner
    assert sorted(on_wecom["zhangsan"].external_userids) == sorted([chats["群A"], chats["群B"]])
    system.sim.contacts.confirm_group_send(on_wecom["zhangsan"].msgid, "zhangsan", [chats["群A"]])
    await polls.poll_open()

    async def settled() -> dict[str, tuple[str, str | None]] | None:
        rows = await _rows(system)
        return rows if rows[chats["群A"]][0] == "sent" else None

    assert await eventually(settled) == {
        chats["群A"]: ("sent", None),
        chats["群B"]: ("skipped", "not_sent"),
        chats["群C"]: ("queued", None),
    }

    await system.add_staff("boss", Role.ADMIN)
    http = await system.login("boss")
    try:
        async with system.services.db.reading() as s:
            run_id = await s.scalar(select(BroadcastRun.id))
        export = await (await http.get(f"{system.base}/broadcasts/runs/{run_id}/export.csv")).text()
    finally:
        await http.close()
    lines = {line.split(",")[4]: line.split(",")[5] for line in export.splitlines()[1:]}
    assert lines == {chats["群A"]: "sent", chats["群B"]: "skipped", chats["群C"]: "queued"}


async def test_picked_groups_go_in_chat_id_list_and_other_owners_groups_stay_out(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    account_id, chats = await _groups_world(system)
    await _broadcast(system, account_id, owners=[], chat_ids=[chats["群B"]])
    polls = GroupSends(system.services.db, wecom_api_for(system.services.accounts))
    await eventually(lambda: _created(system, polls, 1), timeout=20)
    (task,) = system.sim.contacts.group_sends.values()
    assert (task.sender, task.external_userids) == ("zhangsan", [chats["群B"]])
    assert sorted(await _rows(system)) == [chats["群B"]]


async def _post(http: aiohttp.ClientSession, system: System, page: str, url: str) -> str:
    html = await (await http.get(f"{system.base}{page}")).text()
    csrf = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert csrf
    resp = await http.post(f"{system.base}{url}", data={"_csrf": csrf.group(1)})
    return str(resp.url)


async def test_task_controls_remind_a_task_and_cancelling_the_run_cancels_open_tasks(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    account_id, chats = await _groups_world(system)
    polls = GroupSends(system.services.db, wecom_api_for(system.services.accounts))
    console = system.server.app[BROADCAST_CONSOLE_KEY]
    console.task_controls = WeComTaskControls(system.services.db, polls)
    broadcast_id = await _broadcast(system, account_id, owners=["zhangsan", "lisi"])
    await eventually(lambda: _created(system, polls, 2), timeout=20)
    async with system.services.db.reading() as s:
        run_id = await s.scalar(select(BroadcastRun.id))
        tasks = {t.sender: t.id for t in await s.scalars(select(GroupSendTask))}
    await system.add_staff("boss", Role.ADMIN)
    http = await system.login("boss")
    page = f"/broadcasts/{broadcast_id}"
    try:
        assert f"/tasks/{tasks['lisi']}/remind" in await (await http.get(system.base + page)).text()
        for _ in range(3):
            await _post(
                http, system, page, f"/broadcasts/runs/{run_id}/tasks/{tasks['lisi']}/remind"
            )
        refused = await _post(
            http, system, page, f"/broadcasts/runs/{run_id}/tasks/{tasks['lisi']}/remind"
        )
        await _post(http, system, page, f"/broadcasts/runs/{run_id}/cancel")
    finally:
        await http.close()
    on_wecom = {t.sender: t for t in system.sim.contacts.group_sends.values()}
    assert len(on_wecom["lisi"].reminds) == 3
    assert "problem=" in refused
    assert on_wecom["lisi"].cancelled and on_wecom["zhangsan"].cancelled
    rows = await _rows(system)
    assert {rows[c][0] for c in chats.values()} == {"cancelled"}


async def test_form_picker_offers_live_groups_and_picked_groups_bring_their_owners(
    sqlite_system: System,
) -> None:
    system = sqlite_system
    account_id, chats = await _groups_world(system)
    await system.add_staff("boss", Role.ADMIN)
    http = await system.login("boss")
    try:
        form = await (await http.get(f"{system.base}/broadcasts/new")).text()
        csrf = re.search(r'name="_csrf" value="([^"]+)"', form)
        assert csrf
        data = aiohttp.FormData()
        for key, value in (
            ("_csrf", csrf.group(1)),
            ("name", "社群活动"),
            ("audience_kind", "wecom_groups"),
            ("chat_ids", chats["群A"]),
            ("chat_ids", chats["群C"]),
            ("wecom_text", "本周末社群专享价"),
        ):
            data.add_field(key, value)
        await http.post(f"{system.base}/broadcasts", data=data)
    finally:
        await http.close()
    assert all(f'value="{c}"' in form for c in chats.values())
    assert "群E" not in form and 'value="wecom_groups"' in form
    async with system.services.db.reading() as s:
        broadcast = await s.scalar(select(Broadcast))
    assert broadcast is not None
    assert broadcast.channel_order == [account_id]
    assert broadcast.audience == {
        "kind": "wecom_groups",
        "account_id": account_id,
        "owners": ["zhangsan", "lisi"],
        "chat_ids": [chats["群A"], chats["群C"]],
    }
