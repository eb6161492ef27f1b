"""The customer-group part of the console hand-over (WeComGroupTransfer, wired next to
WeComCustomerTransfer): a departed salesperson's groups move to the taker together with
their customers; a giver still in WeCom is refused with 90500 and retried on-job."""

from __future__ import annotations

from sqlalchemy import select

from channels.wecom.groups.models import CustomerGroup
from channels.wecom.groups.sync import run_group_sync
from conversations.handover import Handover
from tests.channels.wecom.groups.scene import api_of
from tests.channels.wecom.test_handover import _hand_over, _team
from tests.system import System

CORP = "wwhandoverconsole"  # the corp of test_handover's team


async def _with_groups(system: System) -> tuple[int, int, list[str]]:
    """test_handover's team (zhangsan → lisi, two customers), plus two groups zhangsan
    owns and one of wangwu's."""
    account, _customers, giver, taker = await _team(system)
    sim = system.sim.groups
    mine = [sim.create_group(CORP, "zhangsan", f"张三的群{n}").chat_id for n in range(2)]
    sim.create_group(CORP, "wangwu", "王五的群")
    await run_group_sync(system.services.db, account.id, await api_of(system, account))
    return giver, taker, mine


async def _owners(system: System) -> dict[str, str]:
    async with system.services.db.reading() as s:
        return {g.name: g.owner_userid for g in (await s.scalars(select(CustomerGroup))).all()}


def _sim_owners(system: System) -> dict[str, str]:
    return {g.name: g.owner for g in system.sim.groups.groups[CORP].values()}


async def test_departed_salespersons_groups_move_with_their_customers(
    sqlite_system: System,
) -> None:
    giver, taker, mine = await _with_groups(sqlite_system)
    sqlite_system.sim.contacts.resigned.add((CORP, "zhangsan"))
    record: Handover = await _hand_over(sqlite_system, giver, taker)
    assert record.transfer_status == "done"
    assert record.transfer_detail["wecom_customers"]["requested"] == 2
    groups = record.transfer_detail["wecom_groups"]
    assert (groups["transferred"], groups["failed"]) == (2, 0)
    (per_account,) = groups["accounts"].values()
    assert sorted(per_account["transferred"]) == sorted(mine)
    expected = {"张三的群0": "lisi", "张三的群1": "lisi", "王五的群": "wangwu"}
    assert await _owners(sqlite_system) == expected
    assert _sim_owners(sqlite_system) == expected
    assert sqlite_system.sim.calls["/cgi-bin/externalcontact/groupchat/transfer"] == 1


async def test_giver_still_in_wecom_is_refused_with_90500_and_retried_on_job(
    sqlite_system: System,
) -> None:
    giver, taker, mine = await _with_groups(sqlite_system)  # zhangsan has not left WeCom
    record: Handover = await _hand_over(sqlite_system, giver, taker)
    assert record.transfer_status == "done"
    groups = record.transfer_detail["wecom_groups"]
    assert (groups["transferred"], groups["failed"]) == (2, 0)
    calls = sqlite_system.sim.calls
    assert calls["/cgi-bin/externalcontact/groupchat/transfer"] == 1  # refused: 90500
    assert calls["/cgi-bin/externalcontact/groupchat/onjob_transfer"] == 1
    assert _sim_owners(sqlite_system)["张三的群0"] == "lisi"
    assert (await _owners(sqlite_system))["张三的群1"] == "lisi"
