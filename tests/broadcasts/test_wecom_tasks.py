"""Broadcasts to 客户联系 customers: one WeCom 企业群发 task per follow-up salesperson,
created once for the whole run, with per-customer results carried back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.wecom_tasks import WeComGroupSendTasks, attachments_of
from broadcasts.engine import BroadcastEngine
from broadcasts.models import BroadcastRecipient, BroadcastRun
from broadcasts.tasks import TaskChannels, TaskOutcome, TaskRecipient, run_task_summaries
from channels.wecom.models import FollowRelation, GroupSendRecipient, GroupSendTask
from conversations.models import ChannelAccount, Customer, Identity, Message, OutboxItem

from .conftest import World


async def _contact_world(world: World) -> tuple[int, dict[str, int]]:
    """A 客户联系 account; customers A, B followed by zhangsan, C by lisi (and zhangsan
    later), D by nobody any more."""
    async with world.db.transaction() as s:
        account = ChannelAccount(kind="wecom.contact", name="客户联系", callback_token="t-wc")
        s.add(account)
        await s.flush()
        ids: dict[str, int] = {}
        follows = {"A": ["zhangsan"], "B": ["zhangsan"], "C": ["lisi", "zhangsan"], "D": []}
        for n, (name, users) in enumerate(follows.items()):
            c = Customer(display_name=name)
            s.add(c)
            await s.flush()
            ids[name] = c.id
            s.add(
                Identity(
                    customer_id=c.id,
                    channel_kind="wecom.contact",
                    account_id=account.id,
                    external_id=f"wm{name}",
                )
            )
            for k, userid in enumerate(users):
                s.add(
                    FollowRelation(
                        account_id=account.id,
                        customer_id=c.id,
                        external_userid=f"wm{name}",
                        userid=userid,
                        added_at=world.clock() - timedelta(days=10 - n - k),
                    )
                )
        return account.id, ids


def _engine(world: World, channel: Any = None) -> BroadcastEngine:
    return world.engine(tasks=TaskChannels({"wecom.contact": channel or WeComGroupSendTasks()}))


async def _until_quiet(engine: BroadcastEngine) -> None:
    for _ in range(20):
        if not (await engine.tick()).busy:
            return
    raise AssertionError("the engine never went quiet")


CONTENT = {
    "wecom": {
        "msgtype": "link",
        "text": "春季新品上市，点击查看",
        "title": "春季新品",
        "url": "https://shop.example.com/spring",
    }
}


async def _tasks(world: World) -> list[GroupSendTask]:
    async with world.db.reading() as s:
        return list(await s.scalars(select(GroupSendTask).order_by(GroupSendTask.sender)))


async def test_one_task_per_salesperson_and_no_message_per_customer(world: World) -> None:
    account, ids = await _contact_world(world)
    bid = await world.broadcast(list(ids.values()), order=[account], content=CONTENT)
    await _until_quiet(_engine(world))
    tasks = await _tasks(world)
    assert [t.sender for t in tasks] == ["lisi", "zhangsan"]
    async with world.db.reading() as s:
        members = {
            t.sender: sorted(
                await s.scalars(
                    select(GroupSendRecipient.external_userid).where(
                        GroupSendRecipient.task_id == t.id
                    )
                )
            )
            for t in tasks
        }
        operations = (await s.scalars(select(OutboxItem.payload))).all()
        messages = (await s.scalars(select(Message.id))).all()
    assert members == {"lisi": ["wmC"], "zhangsan": ["wmA", "wmB"]}
    assert sorted(p["operation"] for p in operations) == ["wecom_group_send"] * 2
    assert tasks[0].attachments == [
        {"msgtype": "link", "link": {"title": "春季新品", "url": "https://shop.example.com/spring"}}
    ]
    assert messages == []  # 客户联系 customers are never sent per-customer messages
    statuses = {r.customer_id: (r.status, r.skip_reason) for r in await world.recipients(bid)}
    assert statuses == {
        ids["A"]: ("queued", None),
        ids["B"]: ("queued", None),
        ids["C"]: ("queued", None),
        ids["D"]: ("skipped", "not_contact"),
    }


async def test_the_customers_owner_sends_when_they_follow_the_customer(world: World) -> None:
    account, ids = await _contact_world(world)
    async with world.db.transaction() as s:
        from conversations.models import StaffUser

        staff = StaffUser(username="zs", display_name="张三", password_hash="x", role="sales")
        staff.wecom_userid = "zhangsan"
        s.add(staff)
        await s.flush()
        customer = await s.get(Customer, ids["C"])
        assert customer is not None
        customer.owner_id = staff.id  # C's 跟进人 is zhangsan, though lisi added C first
    await world.broadcast([ids["C"]], order=[account], content=CONTENT)
    await _until_quiet(_engine(world))
    assert [t.sender for t in await _tasks(world)] == ["zhangsan"]


async def test_group_send_results_become_recipient_statuses(world: World) -> None:
    account, ids = await _contact_world(world)
    bid = await world.broadcast(list(ids.values()), order=[account], content=CONTENT)
    engine = _engine(world)
    await _until_quiet(engine)
    async with world.db.transaction() as s:  # what GroupSends.poll records
        results = {"wmA": 1, "wmB": 3, "wmC": 2}
        for row in await s.scalars(select(GroupSendRecipient)):
            row.status = results[row.external_userid]
        for task in await s.scalars(select(GroupSendTask)):
            task.status = "finished"
    await _until_quiet(engine)
    await engine.tick()
    statuses = {r.customer_id: (r.status, r.skip_reason) for r in await world.recipients(bid)}
    assert statuses == {
        ids["A"]: ("sent", None),
        ids["B"]: ("skipped", "already_received"),
        ids["C"]: ("skipped", "not_contact"),
        ids["D"]: ("skipped", "not_contact"),
    }
    run = await world.run_of(bid)
    assert run is not None and run.status == "completed"


async def test_a_failed_task_fails_its_recipients(world: World) -> None:
    account, ids = await _contact_world(world)
    bid = await world.broadcast([ids["A"]], order=[account], content=CONTENT)
    engine = _engine(world)
    await _until_quiet(engine)
    async with world.db.transaction() as s:
        task = (await s.scalars(select(GroupSendTask))).one()
        task.status, task.error = "failed", "无可发送的客户 (41048)"
    await engine.tick()
    [row] = await world.recipients(bid)
    assert (row.status, row.error) == ("failed", "无可发送的客户 (41048)")


async def test_task_page_summary_shows_each_salespersons_confirmation(world: World) -> None:
    account, ids = await _contact_world(world)
    bid = await world.broadcast(list(ids.values()), order=[account], content=CONTENT)
    channels = TaskChannels({"wecom.contact": WeComGroupSendTasks()})
    await _until_quiet(world.engine(tasks=channels))
    run = await world.run_of(bid)
    assert run is not None
    async with world.db.transaction() as s:
        from channels.wecom.models import GroupSendMember

        task = await s.scalar(select(GroupSendTask).where(GroupSendTask.sender == "lisi"))
        assert task is not None
        s.add(GroupSendMember(task_id=task.id, userid="lisi", status=2))
    async with world.db.reading() as s:
        summaries = await run_task_summaries(s, run.id, channels)
    assert [(t.sender, t.confirmed, t.recipients) for t in summaries] == [
        ("lisi", True, 1),
        ("zhangsan", False, 2),
    ]


class _KilledMidway(WeComGroupSendTasks):
    """The process dies after the first salesperson's task was written, before commit."""

    async def create_tasks(
        self,
        session: AsyncSession,
        *,
        run_id: int,
        account_id: int,
        content: Mapping[str, Any],
        recipients: Sequence[TaskRecipient],
    ) -> Sequence[TaskOutcome]:
        await super().create_tasks(
            session,
            run_id=run_id,
            account_id=account_id,
            content=content,
            recipients=recipients,
        )
        raise SystemExit("killed")


async def test_crash_during_task_creation_leaves_exactly_one_task_per_salesperson(
    world: World,
) -> None:
    account, ids = await _contact_world(world)
    bid = await world.broadcast(list(ids.values()), order=[account], content=CONTENT)
    with pytest.raises(SystemExit):
        await _until_quiet(_engine(world, _KilledMidway()))
    assert await _tasks(world) == []  # nothing half-written
    assert {r.status for r in await world.recipients(bid)} <= {"grouping", "skipped"}
    world.clock.advance(seconds=world.settings.lease_seconds + 1)  # the dead queuer's lease
    await _until_quiet(_engine(world))  # the restarted scheduler
    await _until_quiet(_engine(world))  # and once more: nothing new
    assert [t.sender for t in await _tasks(world)] == ["lisi", "zhangsan"]
    async with world.db.reading() as s:
        assert len((await s.scalars(select(OutboxItem))).all()) == 2
        runs = (await s.scalars(select(BroadcastRun))).all()
        queued = (
            await s.scalars(
                select(BroadcastRecipient.id).where(BroadcastRecipient.status == "queued")
            )
        ).all()
    assert len(runs) == 1 and len(queued) == 3


def test_variant_attachments_follow_the_documented_shapes() -> None:
    assert attachments_of({"msgtype": "image", "media": "MEDIA_ID"}) == [
        {"msgtype": "image", "image": {"media_id": "MEDIA_ID"}}
    ]
    assert attachments_of(
        {"msgtype": "miniprogram", "title": "小程序", "appid": "wx8bd80126147dfAAA", "page": "/p"}
    ) == [
        {
            "msgtype": "miniprogram",
            "miniprogram": {"title": "小程序", "appid": "wx8bd80126147dfAAA", "page": "/p"},
        }
    ]
    assert attachments_of({"msgtype": "text", "text": "hi"}) == []
