"""add_external_contact with a code's State tags the customer, records the source, logs
the add and sends the code's own welcome — exactly one welcome even when the account
has a default one; del_follow_user of a code's customer counts as lost for the code."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from channels.wecom.codes.models import ContactCodeEvent
from channels.wecom.codes.rota import CHINA, RotaMember
from channels.wecom.codes.stats import code_stats
from channels.wecom.models import FollowRelation
from channels.wecom.simulator import contact_event_xml, push
from conversations.access import Role
from conversations.models import ChannelEvent, Customer, OutboxItem
from tagging.tags import Why, tag_customer, tags_of
from tests.channels.wecom.codes.world import CodesWorld, codes_world, draft
from tests.system import System, eventually

FIXTURES = Path(__file__).parent / "fixtures"
EXT = "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"  # the fixtures' ExternalUserID


def fixture(name: str, corp_id: str) -> bytes:
    """A documented callback plaintext addressed to `corp_id`."""
    text = (FIXTURES / f"{name}.xml").read_text(encoding="utf-8")
    return re.sub(
        r"<ToUserName><!\[CDATA\[[^\]]*\]\]>", f"<ToUserName><![CDATA[{corp_id}]]>", text
    ).encode()


async def _processed(system: System, n: int) -> bool:
    async with system.services.db.reading() as s:
        rows = (await s.scalars(select(ChannelEvent.processed_at))).all()
    return len(rows) >= n and all(rows)


async def _push(world: CodesWorld, plaintext: bytes, processed: int) -> None:
    async with aiohttp.ClientSession() as http:
        assert await push(http, world.callback_url, world.account.app, plaintext) == 200
    await eventually(lambda: _processed(world.system, processed))


async def _welcomes(system: System) -> list[OutboxItem]:
    async with system.services.db.reading() as s:
        rows = await s.scalars(select(OutboxItem).where(OutboxItem.purpose == "welcome"))
        return list(rows.all())


async def _stats(system: System, code_id: int) -> tuple[int, int]:
    async with system.services.db.reading() as s:
        stats = await code_stats(
            s,
            code_id,
            start=datetime(2014, 1, 1, tzinfo=UTC),
            end=datetime(2100, 1, 1, tzinfo=UTC),
            tz=CHINA,
        )
    return stats.added, stats.lost


async def _teststate_code(world: CodesWorld, **overrides: Any) -> int:
    code = await world.service.create(
        world.account.id,
        draft(
            state="teststate",
            members=(RotaMember("zhangsan"),),
            tag_ids=(world.tags["海报"],),
            **overrides,
        ),
    )
    return code.id


async def test_documented_add_with_state_tags_sources_and_logs_the_customer(
    sqlite_system: System,
) -> None:
    world = await codes_world(sqlite_system, ("zhangsan",))
    code_id = await _teststate_code(world)
    await _push(world, fixture("add_external_contact_with_state", world.account.corp_id), 1)
    async with sqlite_system.services.db.reading() as s:
        customer = (await s.scalars(select(Customer))).one()
        tags = [t.tag_id for t in await tags_of(s, customer.id)]
        logged = (await s.scalars(select(ContactCodeEvent))).one()
    assert tags == [world.tags["海报"]]
    assert customer.profile["source"] == "渠道活码:地铁海报"
    assert customer.owner_id == world.staff["zhangsan"]
    assert (logged.code_id, logged.kind, logged.external_userid) == (code_id, "added", EXT)


async def test_documented_del_follow_user_counts_as_lost_for_the_code(
    sqlite_system: System,
) -> None:
    world = await codes_world(sqlite_system, ("zhangsan",))
    code_id = await _teststate_code(world)
    await _push(world, fixture("add_external_contact_with_state", world.account.corp_id), 1)
    await _push(world, fixture("del_follow_user", world.account.corp_id), 2)
    assert await _stats(sqlite_system, code_id) == (1, 1)


async def test_code_welcome_replaces_the_default_one_exactly_once(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system, ("zhangsan",))
    async with sqlite_system.services.db.transaction() as s:
        from conversations.models import ChannelAccount

        account = await s.get(ChannelAccount, world.account.id)
        assert account is not None
        account.config = {**account.config, "welcome": {"default": "默认欢迎语"}}
    sqlite_system.services.accounts.forget(world.account.id)
    await _teststate_code(world)
    await _push(world, fixture("add_external_contact_with_state", world.account.corp_id), 1)
    welcomes = await _welcomes(sqlite_system)
    assert [(w.payload["text"], w.payload["attachments"]) for w in welcomes] == [
        ("感谢扫码！地铁海报专享优惠", list(draft().welcome_attachments))
    ]


async def test_code_without_welcome_leaves_the_default_welcome(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system, ("zhangsan",))
    async with sqlite_system.services.db.transaction() as s:
        from conversations.models import ChannelAccount

        account = await s.get(ChannelAccount, world.account.id)
        assert account is not None
        account.config = {**account.config, "welcome": {"default": "默认欢迎语"}}
    await _teststate_code(world, welcome_text="", welcome_attachments=())
    await _push(world, fixture("add_external_contact_with_state", world.account.corp_id), 1)
    assert [w.payload["text"] for w in await _welcomes(sqlite_system)] == ["默认欢迎语"]


async def test_unknown_state_is_not_counted_for_any_code(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system, ("zhangsan",))
    code_id = await _teststate_code(world)
    plaintext = contact_event_xml(
        world.account.corp_id, "add_external_contact", "zhangsan", EXT, State="other-tool"
    )
    await _push(world, plaintext, 1)
    assert await _stats(sqlite_system, code_id) == (0, 0)


async def test_loss_of_a_customer_not_from_a_code_is_not_counted(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system, ("zhangsan",))
    code_id = await _teststate_code(world)
    corp = world.account.corp_id
    await _push(world, contact_event_xml(corp, "add_external_contact", "zhangsan", EXT), 1)
    await _push(world, fixture("del_follow_user", corp), 2)
    assert await _stats(sqlite_system, code_id) == (0, 0)


async def test_same_add_pushed_twice_is_logged_and_tagged_once(sqlite_system: System) -> None:
    world = await codes_world(sqlite_system, ("zhangsan",))
    code_id = await _teststate_code(world)
    plaintext = fixture("add_external_contact_with_state", world.account.corp_id)
    await _push(world, plaintext, 1)
    # the same event through the app's callback URL (可调用应用): another ChannelEvent row
    app = await _app_account(world)
    async with aiohttp.ClientSession() as http:
        await push(http, sqlite_system.callback_url("wecom.app", app.token), app.app, plaintext)
    await eventually(lambda: _processed(sqlite_system, 2))
    assert await _stats(sqlite_system, code_id) == (1, 0)
    assert len(await _welcomes(sqlite_system)) == 1


async def _app_account(world: CodesWorld) -> Any:
    from tests.channels.wecom.world import add_account

    return await add_account(world.system, "wecom.app", world.account.corp_id, agent_id=1000009)


async def test_conversion_counts_code_customers_carrying_the_chosen_tag(
    sqlite_system: System,
) -> None:
    world = await codes_world(sqlite_system, ("zhangsan",))
    code_id = await _teststate_code(world)
    corp = world.account.corp_id
    for n, ext in enumerate(("wmbuyer", "wmbrowser"), start=1):
        plaintext = contact_event_xml(
            corp, "add_external_contact", "zhangsan", ext, State="teststate"
        )
        await _push(world, plaintext, n)
    await sqlite_system.add_staff("marketer", Role.MARKETER)
    async with sqlite_system.services.db.transaction() as s:
        buyer = await s.scalar(
            select(Customer.id)
            .join(FollowRelation, FollowRelation.customer_id == Customer.id)
            .where(FollowRelation.external_userid == "wmbuyer")
        )
        assert buyer is not None
        await tag_customer(s, buyer, world.tags["已成交"], Why("manual"))
    async with await sqlite_system.login("marketer") as console:
        url = f"{sqlite_system.base}/wecom/codes/{code_id}?tag={world.tags['已成交']}"
        page = await (await console.get(url)).text()
    assert '<dd class="converted">1 / 2 (50%)</dd>' in page
