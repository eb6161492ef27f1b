"""Hand-over (在职/离职继承) with recorded results, and the corp-tag API."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from channels.wecom.errors import WeComApiError
from channels.wecom.models import TransferRecord
from channels.wecom.tags import CorpTags, tag_change
from channels.wecom.transfer import poll_open_transfers, poll_results, transfer_customers
from tests.channels.wecom.world import Account, add_account, fixture_xml
from tests.system import System

CORP = "wwhandovercorp"


async def _api(system: System, account: Account) -> Any:
    loaded = await system.services.accounts.by_id(account.id)
    assert loaded is not None
    return loaded.adapter.api  # type: ignore[attr-defined]


async def test_onjob_transfer_in_batches_of_100_records_each_result(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    contacts = sqlite_system.sim.contacts
    sqlite_system.sim.add_member(CORP, "lisi")
    ids = [
        contacts.add_customer(CORP, "zhangsan", f"C{i}", with_welcome_code=False)[0]
        for i in range(150)
    ]
    api = await _api(sqlite_system, account)
    db = sqlite_system.services.db
    records = await transfer_customers(
        db,
        api,
        account.id,
        handover_userid="zhangsan",
        takeover_userid="lisi",
        external_userids=[*ids, "wmnotmine"],
    )
    assert sqlite_system.sim.calls["/cgi-bin/externalcontact/transfer_customer"] == 2
    assert sum(r.status == "requested" for r in records) == 150
    failed = [r for r in records if r.status == "failed"]
    assert [(r.external_userid, r.errcode) for r in failed] == [("wmnotmine", 84061)]
    contacts.complete_transfers()

    async def api_for(_account_id: int) -> Any:
        return api

    assert await poll_open_transfers(db, api_for) == 150
    async with db.reading() as s:
        statuses = {r.status for r in (await s.scalars(select(TransferRecord))).all()}
    assert statuses == {"done", "failed"}
    assert all("lisi" in contacts.contacts[CORP][e].follow for e in ids)


async def test_resigned_transfer_needs_a_resigned_member(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    contacts = sqlite_system.sim.contacts
    sqlite_system.sim.add_member(CORP, "lisi")
    ext, _ = contacts.add_customer(CORP, "wangwu", "W", with_welcome_code=False)
    api = await _api(sqlite_system, account)
    db = sqlite_system.services.db
    with pytest.raises(WeComApiError) as info:
        await transfer_customers(
            db,
            api,
            account.id,
            handover_userid="wangwu",
            takeover_userid="lisi",
            external_userids=[ext],
            resigned=True,
        )
    assert info.value.errcode == 40097 and "离职" in info.value.readable
    contacts.resigned.add((CORP, "wangwu"))
    records = await transfer_customers(
        db,
        api,
        account.id,
        handover_userid="wangwu",
        takeover_userid="lisi",
        external_userids=[ext],
        resigned=True,
    )
    assert [r.status for r in records] == ["requested"]
    contacts.complete_transfers(status=3)  # the customer refused
    await poll_results(
        db, api, account.id, handover_userid="wangwu", takeover_userid="lisi", resigned=True
    )
    async with db.reading() as s:
        assert (await s.scalars(select(TransferRecord.status))).all() == ["refused"]


async def test_a_customer_is_handed_over_at_most_twice(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    contacts = sqlite_system.sim.contacts
    for member in ("lisi", "wangwu"):
        sqlite_system.sim.add_member(CORP, member)
    ext, _ = contacts.add_customer(CORP, "zhangsan", "X", with_welcome_code=False)
    api = await _api(sqlite_system, account)
    db = sqlite_system.services.db
    for handover, takeover in (("zhangsan", "lisi"), ("lisi", "wangwu")):
        await transfer_customers(
            db,
            api,
            account.id,
            handover_userid=handover,
            takeover_userid=takeover,
            external_userids=[ext],
        )
        contacts.complete_transfers()
    third = await transfer_customers(
        db,
        api,
        account.id,
        handover_userid="wangwu",
        takeover_userid="lisi",
        external_userids=[ext],
    )
    assert (third[0].status, third[0].errcode) == ("failed", 40128)
    assert "90" in (third[0].reason or "")


async def test_corp_tags_round_trip(sqlite_system: System) -> None:
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    ext, _ = sqlite_system.sim.contacts.add_customer(CORP, "zhangsan", "T", with_welcome_code=False)
    tags = CorpTags(await _api(sqlite_system, account))
    group = await tags.add(["高意向", "已成交"], group_name="客户阶段")
    assert [t.name for t in group.tags] == ["高意向", "已成交"]
    await tags.edit(group.tags[0].id, name="意向强")
    await tags.mark("zhangsan", ext, add=[group.tags[0].id])
    listed = await tags.list()
    assert [(g.name, [t.name for t in g.tags]) for g in listed] == [
        ("客户阶段", ["意向强", "已成交"])
    ]
    assert sqlite_system.sim.contacts.contacts[CORP][ext].follow["zhangsan"].tags == [
        group.tags[0].id
    ]
    await tags.delete(tag_ids=[group.tags[1].id])
    assert [t.name for t in (await tags.list())[0].tags] == ["意向强"]
    with pytest.raises(WeComApiError) as info:
        await tags.mark("lisi", ext, add=[group.tags[0].id])
    assert info.value.errcode == 84061


def test_tag_change_event_payload_is_read_for_the_sync_job() -> None:
    from channels.wecom.inbound import to_inbound

    event = to_inbound(fixture_xml("change_external_tag_delete", CORP))
    assert tag_change(event.payload) == tag_change(
        {"ChangeType": "delete", "TagType": "tag_group", "Id": "TAG_GROUP_ID"}
    )
    assert tag_change(event.payload).tag_type == "tag_group"


async def test_transfer_fail_event_marks_the_record(sqlite_system: System) -> None:
    import aiohttp

    from channels.wecom.simulator import contact_event_xml, push
    from tests.channels.wecom.world import use_wecom_handlers
    from tests.system import eventually

    use_wecom_handlers(sqlite_system)
    account = await add_account(sqlite_system, "wecom.contact", CORP)
    sqlite_system.sim.add_member(CORP, "lisi")
    ext, _ = sqlite_system.sim.contacts.add_customer(CORP, "zhangsan", "F", with_welcome_code=False)
    await transfer_customers(
        sqlite_system.services.db,
        await _api(sqlite_system, account),
        account.id,
        handover_userid="zhangsan",
        takeover_userid="lisi",
        external_userids=[ext],
    )
    async with aiohttp.ClientSession() as http:
        await push(
            http,
            sqlite_system.callback_url("wecom.contact", account.token),
            account.app,
            contact_event_xml(CORP, "transfer_fail", "lisi", ext, FailReason="customer_refused"),
        )

    async def failed() -> TransferRecord | None:
        async with sqlite_system.services.db.reading() as s:
            return await s.scalar(select(TransferRecord).where(TransferRecord.status == "failed"))

    record = await eventually(failed)
    assert record.reason == "customer_refused"
