"""客户联系: events create customers and follow relations, set the follow-up salesperson,
send the welcome message inside its 20-second window (41051 handled), alert the
salesperson when a customer deletes them, and the full sync resumes from its cursor."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from channels.wecom.contact_sync import CURSOR, refresh_marked, run_full_sync
from channels.wecom.models import FollowRelation
from channels.wecom.simulator import contact_event_xml, push
from conversations.access import Role
from conversations.models import ChannelCursor, Customer, Identity, OutboxItem
from conversations.notifications import StaffNotification
from tests.channels.wecom.world import Account, add_account, use_wecom_handlers
from tests.system import System, eventually

CORP = "wwcontactcorp01"
WELCOME = {
    "welcome": {
        "default": "您好{name}，我是您的专属顾问",
        "by_staff": {"lisi": "{name} 你好，我是李四"},
    }
}


async def _api(system: System, account: Account) -> Any:
    loaded = await system.services.accounts.by_id(account.id)
    assert loaded is not None
    return loaded.adapter.api  # type: ignore[attr-defined]


async def _staff(system: System, username: str, userid: str) -> int:
    staff_id = await system.add_staff(username, Role.SALES)
    async with system.services.db.transaction() as s:
        from conversations.models import StaffUser

        user = await s.get(StaffUser, staff_id)
        assert user is not None
        user.wecom_userid = userid
    return staff_id


async def _outbox(system: System, key: str) -> OutboxItem | None:
    async with system.services.db.reading() as s:
        item = await s.scalar(select(OutboxItem).where(OutboxItem.idempotency_key == key))
        return item if item is not None and item.status in ("sent", "failed") else None


async def test_new_contact_gets_customer_owner_and_named_welcome(sqlite_system: System) -> None:
    use_wecom_handlers(sqlite_system)
    owner = await _staff(sqlite_system, "lisi", "lisi")
    account = await add_account(sqlite_system, "wecom.contact", CORP, config=WELCOME)
    sim = sqlite_system.sim
    ext, code = sim.contacts.add_customer(
        CORP, "lisi", "王先生", unionid="oUNION1", state="poster-7"
    )
    async with aiohttp.ClientSession() as http:
        status = await push(
            http,
            sqlite_system.callback_url("wecom.contact", account.token),
            account.app,
            contact_event_xml(
                CORP, "add_external_contact", "lisi", ext, State="poster-7", WelcomeCode=code or ""
            ),
        )
    assert status == 200
    item = await eventually(lambda: _outbox(sqlite_system, f"welcome:{account.id}:{code}"))
    assert item.status == "sent"
    assert sim.contacts.welcomes == [
        {
            "userid": "lisi",
            "external_userid": ext,
            "text": "王先生 你好，我是李四",
            "attachments": [],
        }
    ]
    async with sqlite_system.services.db.reading() as s:
        customer = (await s.scalars(select(Customer))).one()
        relation = (await s.scalars(select(FollowRelation))).one()
    assert customer.owner_id == owner
    assert (relation.userid, relation.status, relation.state) == ("lisi", "active", "poster-7")


async def test_welcome_answered_41051_is_final_not_retried(sqlite_system: System) -> None:
    use_wecom_handlers(sqlite_system)
    account = await add_account(sqlite_system, "wecom.contact", CORP, config=WELCOME)
    sim = sqlite_system.sim
    ext, code = sim.contacts.add_customer(CORP, "zhangsan", "赵女士")
    assert code is not None
    sim.contacts.welcome_codes[code].used = True  # another app greeted first
    async with aiohttp.ClientSession() as http:
        await push(
            http,
            sqlite_system.callback_url("wecom.contact", account.token),
            account.app,
            contact_event_xml(CORP, "add_external_contact", "zhangsan", ext, WelcomeCode=code),
        )
    item = await eventually(lambda: _outbox(sqlite_system, f"welcome:{account.id}:{code}"))
    assert (item.status, item.last_error_code, item.attempts) == ("failed", "41051", 1)
    assert "41051" not in (item.last_error or "") and "欢迎语" in (item.last_error or "")
    assert sim.contacts.welcomes == []


async def _relations(system: System) -> list[FollowRelation]:
    async with system.services.db.reading() as s:
        return list((await s.scalars(select(FollowRelation))).all())


async def test_customer_deleting_salesperson_alerts_them(sqlite_system: System) -> None:
    use_wecom_handlers(sqlite_system)
    staff_id = await _staff(sqlite_system, "zhangsan", "zhangsan")
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    sim = sqlite_system.sim
    ext, _ = sim.contacts.add_customer(CORP, "zhangsan", "钱总", with_welcome_code=False)
    url = sqlite_system.callback_url("wecom.contact", account.token)
    async with aiohttp.ClientSession() as http:
        await push(
            http, url, account.app, contact_event_xml(CORP, "add_external_contact", "zhangsan", ext)
        )
        await eventually(lambda: _relations(sqlite_system))
        assert (
            await refresh_marked(
                sqlite_system.services.db, account.id, await _api(sqlite_system, account)
            )
            == 1
        )
        sim.contacts.customer_deletes(CORP, "zhangsan", ext)
        for _ in range(3):  # retried deliveries alert once
            await push(
                http, url, account.app, contact_event_xml(CORP, "del_follow_user", "zhangsan", ext)
            )

    async def alerts() -> list[StaffNotification]:
        async with sqlite_system.services.db.reading() as s:
            return list((await s.scalars(select(StaffNotification))).all())

    found = await eventually(alerts)
    assert len(found) == 1 and found[0].staff_id == staff_id and "钱总" in found[0].text
    async with sqlite_system.services.db.reading() as s:
        relation = (await s.scalars(select(FollowRelation))).one()
        customer = (await s.scalars(select(Customer))).one()
    assert relation.status == "deleted_by_customer" and customer.owner_id is None


async def test_full_sync_resumes_after_a_crash_without_loss_or_duplicates(system: System) -> None:
    account = await add_account(system, "wecom.contact", CORP)
    sim = system.sim
    expected = set()
    for i in range(130):
        for userid in ("zhangsan", "lisi") if i % 3 == 0 else ("zhangsan",):
            ext, _ = sim.contacts.add_customer(
                CORP, userid, f"客户{i}", external_userid=f"wmsync{i:04d}", with_welcome_code=False
            )
            expected.add((ext, userid))
    api = await _api(system, account)
    db = system.services.db
    report = await run_full_sync(db, account.id, api, max_pages=1)
    assert report.pages == 1 and not report.finished
    sim.fail_next["/cgi-bin/externalcontact/batch/get_by_user"] = [60011]  # crash mid-sync
    with pytest.raises(Exception, match="60011"):
        await run_full_sync(db, account.id, api)
    async with db.reading() as s:
        position = await s.get(ChannelCursor, (account.id, CURSOR))
        assert position is not None and '"cursor": "100"' in position.value
    calls_before = sim.calls["/cgi-bin/externalcontact/batch/get_by_user"]
    report = await run_full_sync(db, account.id, api)  # the restart
    assert report.resumed and report.finished
    # 130 + 44 relations at 100 per page: 2 pages were left, not all of them again
    assert sim.calls["/cgi-bin/externalcontact/batch/get_by_user"] - calls_before == 1
    async with db.reading() as s:
        relations = {
            (r.external_userid, r.userid) for r in (await s.scalars(select(FollowRelation))).all()
        }
        identities = int(await s.scalar(select(func.count()).select_from(Identity)) or 0)
        named = set((await s.scalars(select(Customer.display_name))).all())
    assert relations == expected
    assert identities == 130 and "客户129" in named


async def test_contact_event_pushed_to_the_app_lands_on_the_corps_contact_account(
    sqlite_system: System,
) -> None:
    use_wecom_handlers(sqlite_system)
    app = await add_account(sqlite_system, "wecom.app", CORP)
    contact = await add_account(sqlite_system, "wecom.contact", CORP, config=WELCOME)
    ext, code = sqlite_system.sim.contacts.add_customer(CORP, "zhangsan", "孙小姐")
    async with aiohttp.ClientSession() as http:
        await push(
            http,
            sqlite_system.callback_url("wecom.app", app.token),
            app.app,
            contact_event_xml(
                CORP, "add_external_contact", "zhangsan", ext, WelcomeCode=code or ""
            ),
        )
    item = await eventually(lambda: _outbox(sqlite_system, f"welcome:{contact.id}:{code}"))
    assert item.status == "sent" and item.account_id == contact.id
    relation = (await eventually(lambda: _relations(sqlite_system)))[0]
    assert relation.account_id == contact.id
