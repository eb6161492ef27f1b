"""Group hand-over: a resigned owner's groups through groupchat/transfer, an employed
owner's through onjob_transfer, ≤100 per call, refusals recorded with their reason."""

from __future__ import annotations

from sqlalchemy import select

from channels.wecom.groups.models import CustomerGroup, GroupTransfer
from channels.wecom.groups.sync import run_group_sync
from channels.wecom.groups.transfer import transfer_groups
from tests.channels.wecom.groups.scene import api_of, contact_account
from tests.channels.wecom.world import Account
from tests.system import System

CORP = "wwgrouphand0001"


async def _world(system: System, groups: int = 2, *, resigned: bool) -> Account:
    account = await contact_account(system, CORP)
    for n in range(groups):
        system.sim.groups.create_group(CORP, "wangwu", f"群{n}", members=[f"wm{n:04d}c"])
    system.sim.groups.create_group(CORP, "zhaoliu", "别人的群")
    system.sim.add_member(CORP, "lisi")
    if resigned:
        system.sim.contacts.resigned.add((CORP, "wangwu"))
    await run_group_sync(system.services.db, account.id, await api_of(system, account))
    return account


async def _owners(system: System) -> dict[str, str]:
    async with system.services.db.reading() as s:
        return {g.name: g.owner_userid for g in (await s.scalars(select(CustomerGroup))).all()}


async def test_resigned_owners_groups_move_to_the_new_owner(sqlite_system: System) -> None:
    account = await _world(sqlite_system, resigned=True)
    report = await transfer_groups(
        sqlite_system.services.db,
        await api_of(sqlite_system, account),
        account.id,
        "wangwu",
        "lisi",
        True,
    )
    assert (report.requested, len(report.transferred), report.ok) == (2, 2, True)
    assert await _owners(sqlite_system) == {"群0": "lisi", "群1": "lisi", "别人的群": "zhaoliu"}
    sim_owners = {g.owner for g in sqlite_system.sim.groups.groups[CORP].values()}
    assert sim_owners == {"lisi", "zhaoliu"}
    async with sqlite_system.services.db.reading() as s:
        rows = (await s.scalars(select(GroupTransfer))).all()
    assert [(r.resigned, r.errcode, r.to_userid) for r in rows] == [(True, 0, "lisi")] * 2


async def test_resigned_hand_over_of_an_employed_owner_is_refused_with_90500(
    sqlite_system: System,
) -> None:
    account = await _world(sqlite_system, resigned=False)
    report = await transfer_groups(
        sqlite_system.services.db,
        await api_of(sqlite_system, account),
        account.id,
        "wangwu",
        "lisi",
        True,
    )
    assert report.transferred == []
    assert {code for code, _ in report.failed.values()} == {90500}
    assert all("在职继承" in reason for _, reason in report.failed.values())
    assert set((await _owners(sqlite_system)).values()) == {"wangwu", "zhaoliu"}


async def test_on_job_hand_over_moves_an_employed_owners_groups(sqlite_system: System) -> None:
    account = await _world(sqlite_system, resigned=False)
    report = await transfer_groups(
        sqlite_system.services.db,
        await api_of(sqlite_system, account),
        account.id,
        "wangwu",
        "lisi",
        False,
    )
    assert len(report.transferred) == 2 and report.ok
    assert sqlite_system.sim.calls["/cgi-bin/externalcontact/groupchat/onjob_transfer"] == 1


async def test_on_job_group_handed_over_twice_in_90_days_is_refused(sqlite_system: System) -> None:
    account = await _world(sqlite_system, groups=1, resigned=False)
    api = await api_of(sqlite_system, account)
    db = sqlite_system.services.db
    sqlite_system.sim.add_member(CORP, "wangwu")
    assert (await transfer_groups(db, api, account.id, "wangwu", "lisi", False)).ok
    assert (await transfer_groups(db, api, account.id, "lisi", "wangwu", False)).ok
    third = await transfer_groups(db, api, account.id, "wangwu", "lisi", False)
    assert [code for code, _ in third.failed.values()] == [90503]


async def test_more_than_100_groups_are_handed_over_in_batches(sqlite_system: System) -> None:
    account = await _world(sqlite_system, groups=101, resigned=True)
    report = await transfer_groups(
        sqlite_system.services.db,
        await api_of(sqlite_system, account),
        account.id,
        "wangwu",
        "lisi",
        True,
    )
    assert len(report.transferred) == 101
    assert sqlite_system.sim.calls["/cgi-bin/externalcontact/groupchat/transfer"] == 2
