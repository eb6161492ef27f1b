"""Freezing, queuing and outcomes of broadcast runs (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from broadcasts.models import BroadcastRecipient, BroadcastRun
from conversations.consent import opt_out
from conversations.models import ChannelAccount, Customer, OutboxItem

from .conftest import World


async def _outbox(world: World) -> list[OutboxItem]:
    async with world.db.reading() as s:
        return list(await s.scalars(select(OutboxItem).order_by(OutboxItem.id)))


async def test_audience_is_frozen_once_and_each_recipient_queued_with_its_key(
    world: World,
) -> None:
    ids = [await world.customer(f"客户{i}", phone=f"+8613800000{i:03d}") for i in range(5)]
    b = await world.broadcast(ids + ids[:2])  # duplicates in the list freeze once
    engine = world.engine()
    await engine.tick()
    await engine.tick()
    run = await world.run_of(b)
    assert run is not None and run.total == 5
    rows = await world.recipients(b)
    assert {r.status for r in rows} == {"queued"}
    keys = sorted(o.idempotency_key for o in await _outbox(world))
    assert keys == sorted(f"bc:{run.id}:{r.id}" for r in rows)
    outbox = await _outbox(world)
    assert outbox[0].payload["text"].startswith("【测试商城】客户")
    assert outbox[0].payload["text"].endswith("拒收请回复R")
    assert outbox[0].purpose == "marketing"


async def test_suppressed_customer_is_skipped_with_the_reason(world: World) -> None:
    ok = await world.customer("甲", phone="+8613800000001")
    out = await world.customer("乙", phone="+8613800000002")
    async with world.db.transaction() as s:
        await opt_out(s, channel="sms", address="+8613800000002", scope="测试商城", source="reply")
    b = await world.broadcast([ok, out])
    await world.engine().tick()
    by_customer = {r.customer_id: r for r in await world.recipients(b)}
    assert by_customer[ok].status == "queued"
    assert (by_customer[out].status, by_customer[out].skip_reason) == ("skipped", "suppressed")


async def test_unreachable_on_first_channel_falls_back_to_the_next(world: World) -> None:
    sms_only = await world.customer("甲", phone="+8613800000001")
    kf_only = await world.customer("乙", kf="wmKf0002")
    email_suppressed_sms = await world.customer("丙", phone="+8613800000003", email="c@example.com")
    nobody = await world.customer("丁")
    async with world.db.transaction() as s:
        await opt_out(s, channel="sms", address="+8613800000003", source="reply")
    b = await world.broadcast(
        [sms_only, kf_only, email_suppressed_sms, nobody], order=[world.sms, world.kf, world.email]
    )
    await world.engine().tick()
    got = {
        r.customer_id: (r.status, r.account_id, r.skip_reason) for r in await world.recipients(b)
    }
    assert got[sms_only] == ("queued", world.sms, None)
    assert got[kf_only] == ("queued", world.kf, None)
    assert got[email_suppressed_sms] == ("queued", world.email, None)
    assert got[nobody] == ("skipped", None, "unreachable")


async def test_undeliverable_send_falls_back_to_the_next_channel(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000009", email="jia@example.com")
    world.provider.fail_recipients.add("+8613800000009")
    b = await world.broadcast([c], order=[world.sms, world.email])
    engine, dispatcher = world.engine(), world.dispatcher()
    await engine.tick()
    await dispatcher.run_once()  # SMS fails permanently
    await engine.tick()  # settles: falls back to email
    await dispatcher.run_once()
    await engine.tick()
    [row] = await world.recipients(b)
    assert (row.status, row.account_id, row.hop) == ("sent", world.email, 1)
    assert [to for _t, _k, to, _key in world.provider.sends] == ["jia@example.com"]
    run = await world.run_of(b)
    assert run is not None and run.status == "completed"


async def test_frequency_cap_skips_the_third_marketing_message_in_a_week(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000001")
    engine = world.engine()
    for _ in range(3):
        b = await world.broadcast([c])
        await engine.tick()
        world.clock.advance(days=1)
    rows = await world.recipients(b)
    assert (rows[0].status, rows[0].skip_reason) == ("skipped", "frequency_cap")
    world.clock.advance(days=5)  # the first two fall out of the 7-day window
    b = await world.broadcast([c])
    await engine.tick()
    assert (await world.recipients(b))[0].status == "queued"


async def test_reminders_are_not_capped(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000001")
    engine = world.engine()
    for _ in range(3):
        await world.broadcast([c])
        await engine.tick()
    b = await world.broadcast([c], purpose="reminder")
    await engine.tick()
    [row] = await world.recipients(b)
    assert row.status == "queued"
    [item] = [o for o in await _outbox(world) if o.purpose == "reminder"]
    assert not item.payload["text"].endswith("拒收请回复R")


async def test_marketing_at_night_is_deferred_to_the_morning(world: World) -> None:
    c = await world.customer("甲", phone="+8613800000001")
    world.clock.now = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    b = await world.broadcast([c])
    engine = world.engine()
    await engine.tick()
    [row] = await world.recipients(b)
    assert row.status == "pending"  # nothing enters the outbox overnight
    assert await _outbox(world) == []
    world.clock.now = datetime(2026, 3, 3, 0, 0, 5, tzinfo=UTC)  # 08:00:05
    await engine.tick()
    [item] = await _outbox(world)
    assert item.next_attempt_at >= datetime(2026, 3, 3, 0, 0, tzinfo=UTC)


async def test_quiet_hours_follow_the_account_setting(world: World) -> None:
    async with world.db.transaction() as s:
        await s.execute(
            update(ChannelAccount)
            .where(ChannelAccount.id == world.sms)
            .values(config={"sign_name": "测试商城", "marketing_hours": "08:00-22:00"})
        )
    c = await world.customer("甲", phone="+8613800000001")
    world.clock.now = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)  # 21:30 Shanghai
    await world.broadcast([c])
    await world.engine().tick()
    assert len(await _outbox(world)) == 1


async def test_rate_limited_account_is_paced_one_slot_apart(world: World) -> None:
    async with world.db.transaction() as s:
        await s.execute(
            update(ChannelAccount)
            .where(ChannelAccount.id == world.sms)
            .values(config={"sign_name": "测试商城", "rate_per_second": 2})
        )
    ids = [await world.customer(f"客户{i}", phone=f"+8613800000{i:03d}") for i in range(40)]
    b = await world.broadcast(ids)
    engine = world.engine()
    await engine.tick()
    items = await _outbox(world)
    assert len(items) == 21  # 10 s horizon at 2/s, slot 0 included
    due = [i.next_attempt_at for i in items]
    assert all(b - a == timedelta(seconds=0.5) for a, b in zip(due, due[1:], strict=False))
    world.clock.advance(seconds=10)
    await engine.tick()
    assert len(await _outbox(world)) == 40
    assert {r.status for r in await world.recipients(b)} == {"queued"}


async def test_paced_run_is_refilled_when_half_its_horizon_is_left(world: World) -> None:
    async with world.db.transaction() as s:
        await s.execute(
            update(ChannelAccount)
            .where(ChannelAccount.id == world.sms)
            .values(config={"sign_name": "测试商城", "rate_per_second": 2})
        )
    ids = [await world.customer(f"客户{i}", phone=f"+8613800000{i:03d}") for i in range(60)]
    await world.broadcast(ids)
    engine = world.engine()
    await engine.tick()
    assert len(await _outbox(world)) == 21  # slots 0 … 10 s
    world.clock.advance(seconds=4)
    await engine.tick()  # over half the horizon still queued: no batch is loaded
    assert len(await _outbox(world)) == 21
    world.clock.advance(seconds=2)
    await engine.tick()  # under half left: refilled up to a full horizon ahead
    assert len(await _outbox(world)) == 33


async def test_set_based_freeze_of_many_customers(world: World) -> None:
    async with world.db.transaction() as s:
        await s.execute(
            Customer.__table__.insert(),
            [
                {
                    "display_name": f"c{i}",
                    "phone": f"+86139{i:08d}",
                    "profile": {},
                    "created_at": world.clock(),
                    "updated_at": world.clock(),
                }
                for i in range(1000)
            ],
        )
    b = await world.broadcast(audience={"kind": "channel", "channel_kind": "wecom.kf"})
    await world.broadcast(  # everyone with a phone: through an explicit id list
        [], audience={"kind": "customers", "customer_ids": list(range(1, 1001))}
    )
    engine = world.engine(settings=world.settings)
    await engine.tick()
    async with world.db.reading() as s:
        counts = dict(
            (
                await s.execute(
                    select(BroadcastRun.broadcast_id, func.count(BroadcastRecipient.id))
                    .join(
                        BroadcastRecipient,
                        BroadcastRecipient.run_id == BroadcastRun.id,
                        isouter=True,
                    )
                    .group_by(BroadcastRun.broadcast_id)
                )
            ).all()
        )
    assert counts[b] == 0
    assert counts[b + 1] == 1000
