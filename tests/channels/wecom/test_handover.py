"""The console's hand-over of a departed salesperson moves their WeCom customers
(离职继承, or 在职继承 while they are still a WeCom member) and records the result."""

from __future__ import annotations

from sqlalchemy import select

from channels.wecom.customers import upsert_follow
from channels.wecom.models import TransferRecord
from conversations.access import Role
from conversations.handover import Handover
from conversations.models import ChannelAccount, StaffUser
from tests.admin_web.people import csrf_of
from tests.channels.wecom.world import Account, add_account
from tests.system import System, eventually

CORP = "wwhandoverconsole"


async def _team(system: System) -> tuple[Account, list[str], int, int]:
    """A 客户联系 account, two customers followed by zhangsan, his and lisi's staff ids."""
    account = await add_account(system, "wecom.contact", CORP)
    system.sim.add_member(CORP, "lisi")
    customers = [
        system.sim.contacts.add_customer(CORP, "zhangsan", name, with_welcome_code=False)[0]
        for name in ("甲", "乙")
    ]
    await system.add_staff("boss", Role.ADMIN)
    giver = await system.add_staff("zs", Role.SALES)
    taker = await system.add_staff("ls", Role.SALES)
    async with system.services.db.transaction() as s:
        for staff_id, userid in ((giver, "zhangsan"), (taker, "lisi")):
            user = await s.get(StaffUser, staff_id)
            assert user is not None
            user.wecom_userid = userid
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        for ext in customers:
            await upsert_follow(s, row, ext, "zhangsan")
    return account, customers, giver, taker


async def _hand_over(system: System, giver: int, taker: int) -> Handover:
    http = await system.login("boss")
    try:
        csrf = await csrf_of(http, f"{system.base}/settings/handover")
        resp = await http.post(
            f"{system.base}/settings/handover",
            data={"_csrf": csrf, "from": str(giver), "to": str(taker), "deactivate": "1"},
            allow_redirects=False,
        )
        assert resp.status == 302
    finally:
        await http.close()

    async def finished() -> Handover | None:
        async with system.services.db.reading() as s:
            return await s.scalar(
                select(Handover).where(Handover.transfer_status.in_(("done", "failed")))
            )

    record: Handover = await eventually(finished)
    return record


async def test_handover_of_a_resigned_salesperson_uses_resigned_transfer(
    sqlite_system: System,
) -> None:
    _account, customers, giver, taker = await _team(sqlite_system)
    sqlite_system.sim.contacts.resigned.add((CORP, "zhangsan"))
    record = await _hand_over(sqlite_system, giver, taker)
    assert record.transfer_status == "done"
    assert record.transfer_detail["wecom_customers"]["requested"] == 2
    transfers = sqlite_system.sim.contacts.transfers
    assert sorted(t.external_userid for t in transfers) == sorted(customers)
    assert all(t.resigned and t.takeover == "lisi" for t in transfers)
    async with sqlite_system.services.db.reading() as s:
        rows = (await s.scalars(select(TransferRecord))).all()
    assert {(r.external_userid, r.status, r.resigned) for r in rows} == {
        (c, "requested", True) for c in customers
    }


async def test_handover_of_a_member_still_in_wecom_falls_back_to_onjob_transfer(
    sqlite_system: System,
) -> None:
    _account, customers, giver, taker = await _team(sqlite_system)
    record = await _hand_over(sqlite_system, giver, taker)  # zhangsan has not left WeCom
    assert record.transfer_status == "done"
    detail = record.transfer_detail["wecom_customers"]["accounts"]
    assert [d["mode"] for d in detail.values()] == ["onjob"]
    assert [t.resigned for t in sqlite_system.sim.contacts.transfers] == [False, False]


async def test_handover_transfer_runs_once_per_record(sqlite_system: System) -> None:
    _account, _customers, giver, taker = await _team(sqlite_system)
    record = await _hand_over(sqlite_system, giver, taker)
    hook = sqlite_system.services.extras["handover"]
    await hook(record.id)  # a second call (double submit, re-run) asks WeCom nothing
    assert sqlite_system.sim.calls["/cgi-bin/externalcontact/transfer_customer"] == 1
