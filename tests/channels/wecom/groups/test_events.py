"""change_external_chat keeps groups current: create, members joining and leaving (with
scene, history and customer links), owner/name/notice changes fetched by the refresh
job, dismissal — from the documented payloads, pushed through the real callback."""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import func, select

from channels.wecom.customers import upsert_follow
from channels.wecom.groups.events import on_group_chat_event
from channels.wecom.groups.models import (
    CustomerGroup,
    GroupMember,
    GroupMembershipChange,
)
from channels.wecom.groups.queries import groups_of_owners
from channels.wecom.groups.sync import refresh_marked_groups
from channels.wecom.simulator import push
from channels.wecom.simulator.groupchat import group_scenario
from conversations.db import utcnow
from conversations.handlers import EventContext
from conversations.models import ChannelAccount, ChannelEvent
from conversations.types import ChannelRules
from tests.channels.wecom.groups.scene import (
    FIXTURE_CHAT,
    FIXTURE_CUSTOMER,
    api_of,
    chat_fixture,
    contact_account,
)
from tests.channels.wecom.world import Account
from tests.system import System, eventually

CORP = "wwgroupcorp0001"


async def _push(system: System, account: Account, *names: str) -> None:
    async with aiohttp.ClientSession() as http:
        for name in names:
            url = system.callback_url("wecom.contact", account.token)
            assert await push(http, url, account.app, chat_fixture(name, CORP)) == 200, name

    async def processed() -> bool:
        async with system.services.db.reading() as s:
            pending = await s.scalar(
                select(func.count())
                .select_from(ChannelEvent)
                .where(ChannelEvent.account_id == account.id, ChannelEvent.processed_at.is_(None))
            )
            total = await s.scalar(
                select(func.count())
                .select_from(ChannelEvent)
                .where(ChannelEvent.account_id == account.id)
            )
        return pending == 0 and (total or 0) >= len(names)

    await eventually(processed)


async def _group(system: System) -> CustomerGroup:
    async with system.services.db.reading() as s:
        group = await s.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == FIXTURE_CHAT))
    assert group is not None
    return group


async def _members(system: System) -> dict[str, GroupMember]:
    async with system.services.db.reading() as s:
        rows = (await s.scalars(select(GroupMember))).all()
    return {m.member_id: m for m in rows}


async def _history(system: System) -> list[tuple[str, str, int | None]]:
    async with system.services.db.reading() as s:
        rows = (
            await s.scalars(select(GroupMembershipChange).order_by(GroupMembershipChange.id))
        ).all()
    return [(h.member_id, h.change, h.scene) for h in rows]


async def _world(system: System) -> Account:
    account = await contact_account(system, CORP)
    system.sim.groups.create_group(CORP, "zhangsan", "VIP 客户群", chat_id=FIXTURE_CHAT)
    return account


async def test_create_event_stores_the_group_and_the_refresh_fills_it(
    sqlite_system: System,
) -> None:
    account = await _world(sqlite_system)
    await _push(sqlite_system, account, "create")
    assert (await _group(sqlite_system)).needs_refresh is True

    assert (
        await refresh_marked_groups(
            sqlite_system.services.db, account.id, await api_of(sqlite_system, account)
        )
        == 1
    )
    group = await _group(sqlite_system)
    assert (group.name, group.owner_userid, group.needs_refresh) == (
        "VIP 客户群",
        "zhangsan",
        False,
    )
    assert group.corp_id == CORP
    assert set(await _members(sqlite_system)) == {"zhangsan"}


async def test_members_join_with_scene_and_known_customer_link_then_leave(system: System) -> None:
    account = await _world(system)
    async with system.services.db.transaction() as s:
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        relation = await upsert_follow(s, row, FIXTURE_CUSTOMER, "zhangsan", name="王先生")
        customer_id = relation.customer_id
    await _push(system, account, "create", "update_add_member")
    joined = await _members(system)
    assert joined[FIXTURE_CUSTOMER].customer_id == customer_id
    assert (joined[FIXTURE_CUSTOMER].member_type, joined["Rose"].member_type) == (2, 1)
    assert joined[FIXTURE_CUSTOMER].join_scene == 3  # scanned the group QR code
    assert joined["Rose"].customer_id is None

    await _push(system, account, "update_del_member")
    left = (await _members(system))[FIXTURE_CUSTOMER]
    assert left.left_at is not None and left.quit_scene == 0
    assert await _history(system) == [
        (FIXTURE_CUSTOMER, "join", 3),
        ("Rose", "join", 3),
        (FIXTURE_CUSTOMER, "leave", 0),
    ]


@pytest.mark.parametrize(
    ("fixture", "field", "value"),
    [
        ("update_change_owner", "owner_userid", "lisi"),
        ("update_change_name", "name", "VIP 客户群（二群）"),
        ("update_change_notice", "notice", "本周六门店活动"),
    ],
)
async def test_group_changes_are_fetched_by_the_refresh(
    sqlite_system: System, fixture: str, field: str, value: str
) -> None:
    account = await _world(sqlite_system)
    await _push(sqlite_system, account, "create")
    api = await api_of(sqlite_system, account)
    await refresh_marked_groups(sqlite_system.services.db, account.id, api)
    sim_group = sqlite_system.sim.groups.groups[CORP][FIXTURE_CHAT]
    sqlite_system.sim.add_member(CORP, "lisi")
    setattr(sim_group, {"owner_userid": "owner"}.get(field, field), value)

    await _push(sqlite_system, account, fixture)
    assert (await _group(sqlite_system)).needs_refresh is True
    await refresh_marked_groups(sqlite_system.services.db, account.id, api)
    assert getattr(await _group(sqlite_system), field) == value


async def test_dismissed_group_leaves_the_owner_group_picker(sqlite_system: System) -> None:
    account = await _world(sqlite_system)
    await _push(sqlite_system, account, "create")
    async with sqlite_system.services.db.reading() as s:
        group = await s.scalar(select(CustomerGroup))
        assert group is not None
        group_id = group.id
    async with sqlite_system.services.db.transaction() as s:
        stored = await s.get(CustomerGroup, group_id)
        assert stored is not None
        stored.owner_userid = "zhangsan"
    async with sqlite_system.services.db.reading() as s:
        assert await groups_of_owners(s, account.id, ["zhangsan"]) == [FIXTURE_CHAT]

    await _push(sqlite_system, account, "dismiss")
    assert (await _group(sqlite_system)).dismissed_at is not None
    async with sqlite_system.services.db.reading() as s:
        assert await groups_of_owners(s, account.id, ["zhangsan"]) == []


async def test_a_replayed_member_event_changes_nothing(sqlite_system: System) -> None:
    account = await _world(sqlite_system)
    await _push(sqlite_system, account, "create", "update_add_member", "update_del_member")
    before = (await _history(sqlite_system), await _members(sqlite_system))
    async with sqlite_system.services.db.transaction() as s:
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        for event in (await s.scalars(select(ChannelEvent).order_by(ChannelEvent.id))).all():
            await on_group_chat_event(EventContext(s, row, ChannelRules(), event, utcnow()))
    after = (await _history(sqlite_system), await _members(sqlite_system))
    assert after[0] == before[0]
    assert {k: (m.left_at, m.join_time) for k, m in after[1].items()} == {
        k: (m.left_at, m.join_time) for k, m in before[1].items()
    }


async def test_sandbox_scenario_keeps_the_group_current(sqlite_system: System) -> None:
    account = await contact_account(sqlite_system, CORP)
    async with aiohttp.ClientSession() as http:
        sim_group = await group_scenario(
            http,
            sqlite_system.sim,
            account.app,
            sqlite_system.callback_url("wecom.contact", account.token),
            "zhangsan",
            ["wmScenarioA", "wmScenarioB"],
            name="新品体验群",
            leaver="wmScenarioB",
        )

    async def all_processed() -> bool:
        async with sqlite_system.services.db.reading() as s:
            events = (await s.scalars(select(ChannelEvent))).all()
        return len(events) == 4 and all(e.processed_at is not None for e in events)

    await eventually(all_processed)
    await refresh_marked_groups(
        sqlite_system.services.db, account.id, await api_of(sqlite_system, account)
    )
    async with sqlite_system.services.db.reading() as s:
        group = await s.scalar(select(CustomerGroup))
    assert group is not None
    assert (group.chat_id, group.name) == (sim_group.chat_id, "新品体验群（VIP）")
    members = await _members(sqlite_system)
    assert {k for k, m in members.items() if m.left_at is None} == {"zhangsan", "wmScenarioA"}
    assert members["wmScenarioB"].quit_scene == 0
