"""The console's customer-group pages: the list scoped to the viewer, a group's page with
members, customers, history and archived timeline, the hand-over button, welcome
templates and the dashboard panel."""

from __future__ import annotations

import re

import aiohttp
from sqlalchemy import select

from channels.wecom.customers import upsert_follow
from channels.wecom.groups.models import CustomerGroup, GroupWelcomeTemplate
from channels.wecom.groups.sync import run_group_sync
from conversations.access import Role
from conversations.models import ChannelAccount, StaffUser
from tests.channels.wecom.groups.scene import api_of, contact_account
from tests.channels.wecom.world import Account
from tests.system import System

CORP = "wwgroupcons0001"
CUSTOMER = "wmConsoleCustomer01"


async def _staff(system: System, username: str, role: Role, userid: str | None = None) -> None:
    staff_id = await system.add_staff(username, role)
    async with system.services.db.transaction() as s:
        user = await s.get(StaffUser, staff_id)
        assert user is not None
        user.wecom_userid = userid


async def _world(system: System) -> Account:
    account = await contact_account(system, CORP)
    sim = system.sim
    sim.groups.create_group(CORP, "zhangsan", "张三的VIP群", members=[CUSTOMER, "wmStranger01"])
    sim.groups.create_group(CORP, "lisi", "李四的群")
    async with system.services.db.transaction() as s:
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        await upsert_follow(s, row, CUSTOMER, "zhangsan", name="王先生")
    await run_group_sync(system.services.db, account.id, await api_of(system, account))
    return account


async def _group_id(system: System, name: str) -> int:
    async with system.services.db.reading() as s:
        found = await s.scalar(select(CustomerGroup.id).where(CustomerGroup.name == name))
    assert found is not None
    return int(found)


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    found = re.search(r'name="_csrf" value="([^"]+)"', await (await http.get(url)).text())
    assert found
    return found.group(1)


async def test_salesperson_sees_only_the_groups_they_own(sqlite_system: System) -> None:
    await _world(sqlite_system)
    await _staff(sqlite_system, "zhangsan", Role.SALES, "zhangsan")
    http = await sqlite_system.login("zhangsan")
    try:
        page = await (await http.get(f"{sqlite_system.base}/wecom/groups")).text()
        other = await http.get(
            f"{sqlite_system.base}/wecom/groups/{await _group_id(sqlite_system, '李四的群')}"
        )
    finally:
        await http.close()
    assert "张三的VIP群" in page and "李四的群" not in page
    assert other.status == 404


async def test_group_page_shows_members_their_customers_and_history(sqlite_system: System) -> None:
    await _world(sqlite_system)
    await _staff(sqlite_system, "boss", Role.MANAGER)
    http = await sqlite_system.login("boss")
    try:
        group_id = await _group_id(sqlite_system, "张三的VIP群")
        html = await (await http.get(f"{sqlite_system.base}/wecom/groups/{group_id}")).text()
    finally:
        await http.close()
    assert re.search(rf'data-member="{CUSTOMER}".*?/customers/\d+">王先生</a>', html, re.S)
    assert 'data-member="wmStranger01"' in html
    assert html.count("· 入群</li>") == 3  # one history line per member who joined


async def test_hand_over_button_moves_the_groups_and_lists_refusals(sqlite_system: System) -> None:
    account = await _world(sqlite_system)
    sqlite_system.sim.add_member(CORP, "wangwu")
    await _staff(sqlite_system, "boss", Role.MANAGER)
    http = await sqlite_system.login("boss")
    try:
        token = await _csrf(http, f"{sqlite_system.base}/wecom/groups")
        resp = await http.post(
            f"{sqlite_system.base}/wecom/groups/transfer",
            data={
                "_csrf": token,
                "account_id": str(account.id),
                "from_userid": "zhangsan",
                "to_userid": "wangwu",
                "resigned": "1",  # zhangsan has not resigned: WeCom refuses (90500)
            },
        )
        refused = await resp.text()
        resp = await http.post(
            f"{sqlite_system.base}/wecom/groups/transfer",
            data={
                "_csrf": token,
                "account_id": str(account.id),
                "from_userid": "zhangsan",
                "to_userid": "wangwu",
            },
        )
        moved = await resp.text()
    finally:
        await http.close()
    assert "在职继承" in refused and "0 / 1" in refused
    assert "1 / 1" in moved
    async with sqlite_system.services.db.reading() as s:
        owners = {g.name: g.owner_userid for g in (await s.scalars(select(CustomerGroup))).all()}
    assert owners == {"张三的VIP群": "wangwu", "李四的群": "lisi"}


async def test_welcome_template_is_created_from_the_console(sqlite_system: System) -> None:
    account = await _world(sqlite_system)
    await _staff(sqlite_system, "boss", Role.MANAGER)
    http = await sqlite_system.login("boss")
    try:
        token = await _csrf(http, f"{sqlite_system.base}/wecom/groups/welcome")
        resp = await http.post(
            f"{sqlite_system.base}/wecom/groups/welcome",
            data={
                "_csrf": token,
                "account_id": str(account.id),
                "text": "欢迎入群！",
                "link_url": "https://example.com/a",
                "link_title": "活动",
            },
        )
        page = await resp.text()
    finally:
        await http.close()
    assert "欢迎入群！" in page
    async with sqlite_system.services.db.reading() as s:
        row = await s.scalar(select(GroupWelcomeTemplate))
    assert row is not None
    assert sqlite_system.sim.groups.templates[CORP][row.template_id]["link"]["title"] == "活动"


async def test_dashboard_shows_the_customer_group_panel(sqlite_system: System) -> None:
    await _world(sqlite_system)
    await _staff(sqlite_system, "boss", Role.MANAGER)
    http = await sqlite_system.login("boss")
    try:
        html = await (await http.get(f"{sqlite_system.base}/dashboard")).text()
    finally:
        await http.close()
    assert "客户群每日数据" in html and "退群人数" in html


async def test_member_who_became_a_customer_later_shows_the_link(sqlite_system: System) -> None:
    account = await _world(sqlite_system)
    async with sqlite_system.services.db.transaction() as s:
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        await upsert_follow(s, row, "wmStranger01", "zhangsan", name="赵女士")
    await _staff(sqlite_system, "boss", Role.MANAGER)
    http = await sqlite_system.login("boss")
    try:
        group_id = await _group_id(sqlite_system, "张三的VIP群")
        html = await (await http.get(f"{sqlite_system.base}/wecom/groups/{group_id}")).text()
    finally:
        await http.close()
    assert re.search(r'data-member="wmStranger01".*?/customers/\d+">赵女士</a>', html, re.S)
