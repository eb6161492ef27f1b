"""Approval, pause/resume/cancel, fire-once, reminders, preview/estimate/test send,
click tracking and results (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from broadcasts.audience import AudienceRegistry
from broadcasts.control import (
    PARKED_UNTIL,
    BroadcastError,
    approve,
    cancel_run,
    estimate,
    pause_run,
    preview,
    reject,
    resume_run,
    send_test_message,
)
from broadcasts.links import open_click, record_click, sign_click
from broadcasts.models import Broadcast, BroadcastLink, BroadcastRun
from broadcasts.policy import PolicyRegistry
from broadcasts.reminders import schedule_birthday_greetings, schedule_reminder
from broadcasts.results import export_csv, progress
from conversations.actions import record_inbound
from conversations.models import ChannelAccount, OutboxItem, StaffUser
from conversations.types import InboundMessage, MessageKind

from .conftest import SECRET, World


async def _staff(world: World, role: str, name: str) -> StaffUser:
    async with world.db.transaction() as s:
        user = StaffUser(username=name, display_name=name, password_hash="x", role=role)
        s.add(user)
        await s.flush()
        return user


async def _outbox(world: World) -> list[OutboxItem]:
    async with world.db.reading() as s:
        return list(await s.scalars(select(OutboxItem).order_by(OutboxItem.id)))


async def test_broadcast_needing_approval_waits_for_a_manager(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000001")
    b = await world.broadcast([c], requires_approval=True)
    engine = world.engine()
    await engine.tick()
    assert (await world.get(b)).status == "pending_approval"
    assert await world.run_of(b) is None
    manager = await _staff(world, "manager", "经理")
    async with world.db.transaction() as s:
        broadcast = await s.get(Broadcast, b)
        assert broadcast is not None
        await approve(s, broadcast, approver=manager, now=world.clock())
    await engine.tick()
    assert [r.status for r in await world.recipients(b)] == ["queued"]


async def test_sales_cannot_approve_and_rejection_returns_to_draft(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000001")
    b = await world.broadcast([c], requires_approval=True)
    sales = await _staff(world, "sales", "销售")
    manager = await _staff(world, "manager", "经理")
    async with world.db.transaction() as s:
        broadcast = await s.get(Broadcast, b)
        assert broadcast is not None
        with pytest.raises(PermissionError):
            await approve(s, broadcast, approver=sales, now=world.clock())
        await reject(s, broadcast, approver=manager, note="文案再改改")
        assert broadcast.status == "draft"


async def test_invalid_content_is_refused_before_scheduling(world: World) -> None:
    with pytest.raises(BroadcastError) as err:
        await world.broadcast([1], content={"sms": {"text": "{coupon}到账"}})
    assert "unknown variable {coupon}" in str(err.value)


async def test_two_engines_fire_a_schedule_once(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000001")
    b = await world.broadcast([c], schedule={"kind": "cron", "cron": "0 9 * * *"})
    world.clock.now = datetime(2026, 3, 3, 1, 0, 1, tzinfo=UTC)  # 09:00:01 Shanghai
    first, second = world.engine(), world.engine()
    await asyncio.gather(first.tick(), second.tick())
    async with world.db.reading() as s:
        runs = list(await s.scalars(select(BroadcastRun).where(BroadcastRun.broadcast_id == b)))
        broadcast = await s.get(Broadcast, b)
    assert len(runs) == 1
    assert broadcast is not None
    assert broadcast.next_fire_at == datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
    assert len(await _outbox(world)) == 1


async def test_paused_run_holds_queued_rows_and_resume_releases_them(world: World) -> None:
    async with world.db.transaction() as s:
        await s.execute(
            update(ChannelAccount)
            .where(ChannelAccount.id == world.sms)
            .values(config={"sign_name": "测试商城", "rate_per_second": 1})
        )
    ids = [await world.customer(f"客户{i}", phone=f"+8613800000{i:03d}") for i in range(30)]
    b = await world.broadcast(ids)
    engine = world.engine()
    await engine.tick()
    run = await world.run_of(b)
    assert run is not None
    async with world.db.transaction() as s:
        live = await s.get(BroadcastRun, run.id)
        assert live is not None
        await pause_run(s, live, actor_id=None)
    world.clock.advance(seconds=30)
    await engine.tick()
    items = await _outbox(world)
    assert len(items) == 11  # nothing new queued while paused
    assert all(i.next_attempt_at == PARKED_UNTIL for i in items)
    async with world.db.transaction() as s:
        live = await s.get(BroadcastRun, run.id)
        assert live is not None
        await resume_run(s, live, actor_id=None, now=world.clock())
    await engine.tick()
    items = await _outbox(world)
    assert len(items) > 11
    assert all(i.next_attempt_at < PARKED_UNTIL for i in items)


async def test_cancel_stops_unsent_rows_and_keeps_sent_ones(world: World) -> None:
    ids = [await world.customer(f"客户{i}", phone=f"+8613800000{i:03d}") for i in range(6)]
    b = await world.broadcast(ids)
    engine, dispatcher = (
        world.engine(settings=world.settings.__class__(secret_key=SECRET, batch=3)),
        world.dispatcher(batch=2),
    )
    await engine.tick(max_batches=1)  # 3 queued, 3 pending
    await dispatcher.run_once()  # 2 sent
    run = await world.run_of(b)
    assert run is not None
    async with world.db.transaction() as s:
        live = await s.get(BroadcastRun, run.id)
        assert live is not None
        stopped = await cancel_run(s, live, actor_id=None, now=world.clock())
    assert stopped == 1
    await engine.tick()
    await dispatcher.run_once()
    assert len(world.provider.sends) == 2
    statuses = sorted(r.status for r in await world.recipients(b))
    assert statuses == ["cancelled"] * 4 + ["queued"] * 2  # sent ones settle no more
    async with world.db.reading() as s:
        report = await progress(s, run.id, timedelta(hours=72))
    assert report.counts == {"cancelled": 4, "sent": 2}


async def test_reminder_goes_to_one_customer_at_the_local_time(world: World) -> None:
    c = await world.customer("甲", kf="wmKf0001")
    async with world.db.transaction() as s:
        r = await schedule_reminder(
            s,
            customer_id=c,
            at_local="2026-03-02T15:00",
            timezone="Asia/Shanghai",
            content={"wecom": {"msgtype": "text", "text": "{customer_name}，合同今天到期"}},
            channel_order=[world.kf],
            actor_id=None,
            policies=PolicyRegistry(),
            audiences=AudienceRegistry(),
            now=world.clock(),
        )
        assert r.next_fire_at == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    engine = world.engine()
    await engine.tick()
    assert await _outbox(world) == []
    world.clock.now = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    await engine.tick()
    [item] = await _outbox(world)
    assert (item.recipient, item.purpose, item.payload["text"]) == (
        "wmKf0001",
        "reminder",
        "甲，合同今天到期",
    )


async def test_birthday_greeting_reaches_todays_birthdays_only(world: World) -> None:
    today = await world.customer("寿星", kf="wmKf0001", profile={"birthday": "1990-03-02"})
    await world.customer("别人", kf="wmKf0002", profile={"birthday": "1991-07-09"})
    async with world.db.transaction() as s:
        await schedule_birthday_greetings(
            s,
            hour=9,
            timezone="Asia/Shanghai",
            content={"wecom": {"msgtype": "text", "text": "{customer_name}，生日快乐！"}},
            channel_order=[world.kf],
            actor_id=None,
            policies=PolicyRegistry(),
            audiences=AudienceRegistry(),
            now=datetime(2026, 3, 1, 16, 0, tzinfo=UTC),
        )
    world.clock.now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 on 2 March
    await world.engine().tick()
    [item] = await _outbox(world)
    assert item.recipient == "wmKf0001" and today


async def test_preview_estimate_and_test_send_use_real_customer_data(world: World) -> None:
    a = await world.customer("张三", phone="+8613800000001")
    bb = await world.customer("李四", email="li@example.com")
    await world.customer("王五")
    b = await world.broadcast([a, bb, a + 2], order=[world.sms, world.email], submit_now=False)
    async with world.db.transaction() as s:
        broadcast = await s.get(Broadcast, b)
        assert broadcast is not None
        items = await preview(s, broadcast, a, PolicyRegistry())
        assert items[0].text == "【测试商城】张三您好，春季新品上市拒收请回复R"
        assert items[0].estimate.segments == 1
        report = await estimate(s, broadcast, PolicyRegistry(), AudienceRegistry(), world.clock())
        assert (report.recipients, report.unreachable, report.sms_segments) == (3, 1, 1)
        assert report.by_account == {world.sms: 1, world.email: 1}
        marketer = await s.get(StaffUser, world.staff)
        assert marketer is not None
        item = await send_test_message(
            s,
            broadcast,
            actor=marketer,
            account_id=world.sms,
            address="+8613900000000",
            sample_customer_id=a,
            policies=PolicyRegistry(),
        )
        assert item.payload["text"].startswith("【测试商城】张三")


async def test_links_are_tracked_and_tokens_cannot_be_forged(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000001")
    b = await world.broadcast(
        [c], content={"sms": {"text": "新品 https://shop.example.com/spring 详情"}}
    )
    await world.engine().tick()
    [item] = await _outbox(world)
    token = item.payload["text"].split("/r/")[1].split()[0]
    assert open_click(SECRET, token) is not None
    assert open_click(SECRET, token[:-2] + "AA") is None
    async with world.db.transaction() as s:
        assert await record_click(s, SECRET, token) == "https://shop.example.com/spring"
        link = await s.scalar(select(BroadcastLink))
        assert link is not None
        assert await record_click(s, SECRET, sign_click("other" * 8, link.id, 1)) is None
    run = await world.run_of(b)
    assert run is not None
    async with world.db.reading() as s:
        report = await progress(s, run.id, timedelta(hours=72))
    assert (report.clicks, report.clickers) == (1, 1)


async def test_replies_are_attributed_and_results_export_as_csv(world: World) -> None:
    c = await world.customer("甲", kf="wmKf0001")
    b = await world.broadcast([c], order=[world.kf])
    await world.engine().tick()
    await world.dispatcher().run_once()
    await world.engine().tick()
    async with world.db.transaction() as s:
        account = await s.get(ChannelAccount, world.kf)
        assert account is not None
        await record_inbound(
            s,
            account,
            [
                InboundMessage(
                    provider_key="m1",
                    external_id="wmKf0001",
                    kind=MessageKind.TEXT,
                    text="怎么买？",
                    occurred_at=world.clock() + timedelta(hours=1),
                )
            ],
        )
    run = await world.run_of(b)
    assert run is not None
    async with world.db.reading() as s:
        report = await progress(s, run.id, timedelta(hours=72))
        chunks = [chunk async for chunk in export_csv(s, run.id)]
    assert report.replied == 1 and report.counts == {"sent": 1}
    lines = "".join(chunks).lstrip("\ufeff").splitlines()
    assert lines[0].startswith("recipient_id,customer_id,customer_name")
    assert ",甲,微信客服,wmKf0001,sent," in lines[1]
