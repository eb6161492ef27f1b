"""Corp tags (企业客户标签) both ways against the simulator: the catalogue, a customer's
tags pulled from WeCom, and crmbot assignments pushed with mark_tag via the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.wecom_tag_sync import push_tag_changes, sync_corp_tags, tag_sync_account
from channels.wecom import contact_sync
from channels.wecom.customers import upsert_follow
from channels.wecom.models import FollowRelation
from channels.wecom.tags import CorpTags
from conversations.models import ChannelAccount, OutboxItem
from tagging.models import Tag
from tagging.tags import Why, create_group, create_tag, tag_customer, tags_of, untag_customer
from tests.channels.wecom.world import Account, add_account
from tests.system import System, eventually

CORP = "wwtagsynccorp01"


async def _setup(system: System) -> tuple[Account, Any, str, int]:
    account = await add_account(system, "wecom.contact", CORP)
    ext, _ = system.sim.contacts.add_customer(CORP, "zhangsan", "客户甲", with_welcome_code=False)
    async with system.services.db.transaction() as s:
        row = await s.get(ChannelAccount, account.id)
        assert row is not None
        relation = await upsert_follow(s, row, ext, "zhangsan")
        customer_id = relation.customer_id
    loaded = await system.services.accounts.by_id(account.id)
    assert loaded is not None
    return account, loaded.adapter.api, ext, customer_id  # type: ignore[attr-defined]


async def test_a_tag_made_in_wecom_appears_in_crmbot(sqlite_system: System) -> None:
    account, api, _ext, _customer = await _setup(sqlite_system)
    made = await CorpTags(api).add(["金卡", "银卡"], group_name="会员等级")
    report = await sync_corp_tags(sqlite_system.services.db, account.id, api)
    assert report["created_here"] == 2
    async with sqlite_system.services.db.reading() as s:
        tags = {t.name: t.wecom_tag_id for t in await s.scalars(select(Tag))}
    assert tags == {t.name: t.id for t in made.tags}


async def test_a_tag_made_in_crmbot_is_created_in_wecom(sqlite_system: System) -> None:
    account, api, _ext, _customer = await _setup(sqlite_system)
    async with sqlite_system.services.db.transaction() as s:
        await create_tag(s, await create_group(s, "客户阶段"), "高意向")
    await sync_corp_tags(sqlite_system.services.db, account.id, api)
    listed = await CorpTags(api).list()
    assert [(g.name, [t.name for t in g.tags]) for g in listed] == [("客户阶段", ["高意向"])]
    await sync_corp_tags(sqlite_system.services.db, account.id, api)  # nothing twice
    assert len((await CorpTags(api).list())[0].tags) == 1


async def test_a_tag_assigned_in_crmbot_reaches_wecom_through_the_outbox(
    sqlite_system: System,
) -> None:
    account, api, ext, customer_id = await _setup(sqlite_system)
    db = sqlite_system.services.db
    async with db.transaction() as s:
        tag = await create_tag(s, await create_group(s, "客户阶段"), "高意向")
        tag_id = tag.id
    await sync_corp_tags(db, account.id, api)
    async with db.transaction() as s:
        await tag_customer(s, customer_id, tag_id, Why("manual"))
    assert await push_tag_changes(db, account.id) == 1
    assert await push_tag_changes(db, account.id) == 0  # the cursor moved with the queue
    sqlite_system.services.dispatcher.wake()
    follow = sqlite_system.sim.contacts.contacts[CORP][ext].follow["zhangsan"]
    async with db.reading() as s:
        wecom_id = (await s.get(Tag, tag_id)).wecom_tag_id  # type: ignore[union-attr]

    async def marked() -> bool:
        return follow.tags == [wecom_id]

    await eventually(marked)
    async with db.transaction() as s:
        await untag_customer(s, customer_id, tag_id, Why("manual"))
    await push_tag_changes(db, account.id)
    sqlite_system.services.dispatcher.wake()

    async def unmarked() -> bool:
        return follow.tags == []

    await eventually(unmarked)
    async with db.reading() as s:
        ops = (await s.scalars(select(OutboxItem.payload))).all()
    assert [(p["add_tag"], p["remove_tag"]) for p in ops] == [([wecom_id], []), ([], [wecom_id])]


async def test_a_tag_put_on_a_customer_in_wecom_appears_on_the_crmbot_customer(
    sqlite_system: System,
) -> None:
    account, api, ext, customer_id = await _setup(sqlite_system)
    db = sqlite_system.services.db
    made = await CorpTags(api).add(["已成交"], group_name="客户阶段")
    await sync_corp_tags(db, account.id, api)
    await CorpTags(api).mark("zhangsan", ext, add=[made.tags[0].id])  # a salesperson in WeCom
    async with db.transaction() as s:  # what the edit_external_contact event marks
        for rel in await s.scalars(select(FollowRelation)):
            rel.needs_refresh = True
    await contact_sync.refresh_marked(db, account.id, api)
    report = await sync_corp_tags(db, account.id, api)
    assert report["customer_changes"] == 1
    async with db.reading() as s:
        assigned = await tags_of(s, customer_id)
    assert [(t.name, t.source) for t in assigned] == [("已成交", "wecom")]
    assert await push_tag_changes(db, account.id) == 0  # not echoed back to WeCom


async def test_the_only_contact_account_holds_the_tag_ids(sqlite_system: System) -> None:
    assert await tag_sync_account(sqlite_system.services.db) is None
    account, *_ = await _setup(sqlite_system)
    assert await tag_sync_account(sqlite_system.services.db) == account.id
