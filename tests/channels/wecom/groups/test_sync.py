"""The full group sync pages groupchat/list by cursor, reads each group with
groupchat/get, and resumes from its stored cursor after an interruption."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from channels.wecom.errors import WeComApiError
from channels.wecom.groups import sync
from channels.wecom.groups.models import CustomerGroup, GroupMember, GroupMembershipChange
from channels.wecom.groups.sync import continue_group_sync, run_group_sync
from conversations.access import Role
from tests.channels.wecom.groups.scene import api_of, contact_account
from tests.system import System

CORP = "wwgroupsync0001"


async def _count(system: System, model: type) -> int:
    async with system.services.db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


def _seed(system: System, groups: int) -> None:
    for n in range(groups):
        system.sim.groups.create_group(
            CORP, f"sales{n % 3}", f"群{n}", members=[f"wm{n:04d}customer", "helper"]
        )


async def test_sync_pages_through_every_group_with_members(
    sqlite_system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "PAGE_LIMIT", 2)
    account = await contact_account(sqlite_system, CORP)
    _seed(sqlite_system, 5)
    report = await run_group_sync(
        sqlite_system.services.db, account.id, await api_of(sqlite_system, account)
    )
    assert (report.pages, report.groups, report.finished) == (3, 5, True)
    assert await _count(sqlite_system, CustomerGroup) == 5
    assert await _count(sqlite_system, GroupMember) == 15  # owner, customer, helper
    async with sqlite_system.services.db.reading() as s:
        group = await s.scalar(select(CustomerGroup).where(CustomerGroup.name == "群4"))
        assert group is not None and group.owner_userid == "sales1"


async def test_interrupted_sync_resumes_at_the_next_page_without_duplicates(
    sqlite_system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "PAGE_LIMIT", 2)
    account = await contact_account(sqlite_system, CORP)
    _seed(sqlite_system, 5)
    api = await api_of(sqlite_system, account)
    first = await run_group_sync(sqlite_system.services.db, account.id, api, max_pages=1)
    assert (first.pages, first.finished) == (1, False)
    # the next list call fails: a crash between pages
    sqlite_system.sim.fail_next["/cgi-bin/externalcontact/groupchat/list"] = [60020]
    with pytest.raises(WeComApiError):
        await run_group_sync(sqlite_system.services.db, account.id, api)
    calls = sqlite_system.sim.calls["/cgi-bin/externalcontact/groupchat/get"]
    rest = await run_group_sync(sqlite_system.services.db, account.id, api)
    assert (rest.resumed, rest.pages, rest.groups) == (True, 2, 3)
    assert sqlite_system.sim.calls["/cgi-bin/externalcontact/groupchat/get"] - calls == 3
    assert await _count(sqlite_system, CustomerGroup) == 5
    assert await _count(sqlite_system, GroupMembershipChange) == 15


async def test_member_missing_from_the_next_sync_is_recorded_as_left(
    sqlite_system: System,
) -> None:
    account = await contact_account(sqlite_system, CORP)
    group = sqlite_system.sim.groups.create_group(CORP, "sales0", "群", members=["wm0001a"])
    api = await api_of(sqlite_system, account)
    await run_group_sync(sqlite_system.services.db, account.id, api)
    sqlite_system.sim.groups.leave(CORP, group.chat_id, ["wm0001a"])
    await run_group_sync(sqlite_system.services.db, account.id, api)
    async with sqlite_system.services.db.reading() as s:
        member = await s.scalar(select(GroupMember).where(GroupMember.member_id == "wm0001a"))
        changes = (
            await s.scalars(
                select(GroupMembershipChange.change).where(
                    GroupMembershipChange.member_id == "wm0001a"
                )
            )
        ).all()
    assert member is not None and member.left_at is not None
    assert sorted(changes) == ["join", "leave"]


async def test_group_list_limit_outside_1_to_1000_is_refused(sqlite_system: System) -> None:
    account = await contact_account(sqlite_system, CORP)
    api = await api_of(sqlite_system, account)
    with pytest.raises(WeComApiError) as caught:
        await api.call("POST", sync.LIST, body={"limit": 1001})
    assert caught.value.errcode == 40058


async def test_console_sync_stores_a_page_and_the_job_finishes_the_pass(
    sqlite_system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync, "PAGE_LIMIT", 2)
    account = await contact_account(sqlite_system, CORP)
    _seed(sqlite_system, 3)
    await sqlite_system.add_staff("boss", Role.MANAGER)
    http = await sqlite_system.login("boss")
    try:
        page = await (await http.get(f"{sqlite_system.base}/wecom/groups")).text()
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
        assert csrf
        resp = await http.post(
            f"{sqlite_system.base}/wecom/groups/sync",
            data={"_csrf": csrf.group(1), "account_id": str(account.id)},
        )
        assert resp.status == 200
    finally:
        await http.close()
    assert await _count(sqlite_system, CustomerGroup) == 2
    api = await api_of(sqlite_system, account)
    report = await continue_group_sync(sqlite_system.services.db, account.id, api)
    assert report is not None and report.finished
    assert await _count(sqlite_system, CustomerGroup) == 3
    assert await continue_group_sync(sqlite_system.services.db, account.id, api) is None
