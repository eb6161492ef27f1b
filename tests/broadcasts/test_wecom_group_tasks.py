"""Broadcasts to WeCom customer groups (客户群群发) on the engine, both stores: one
recipient row per group (no customer), ONE chat_type group task per owner created
exactly once, per-group results (sent / not sent / failed) settling the run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.wecom_group_broadcasts import register_group_audience
from bot.wecom_tasks import CONFIRMED, WeComGroupSendTasks
from broadcasts.audience import AudienceRegistry
from broadcasts.control import estimate, submit
from broadcasts.engine import BroadcastEngine
from broadcasts.firing import fire_due
from broadcasts.freeze import freeze_run
from broadcasts.models import Broadcast
from broadcasts.policy import PolicyRegistry
from broadcasts.tasks import TaskChannels, TaskOutcome, TaskRecipient, create_run_tasks
from channels.wecom.groups.models import CustomerGroup
from channels.wecom.models import GroupSendMember, GroupSendRecipient, GroupSendTask
from conversations.db import utcnow
from conversations.models import ChannelAccount, OutboxItem

from .conftest import World

CONTENT = {"wecom": {"msgtype": "text", "text": "本周末社群专享价"}}
GROUPS = {"wrA": "zhangsan", "wrB": "zhangsan", "wrC": "lisi", "wrD": "wangwu"}


def _audiences() -> AudienceRegistry:
    audiences = AudienceRegistry()
    register_group_audience(audiences)
    return audiences


async def _group_broadcast(world: World, **audience: Any) -> tuple[int, int]:
    """A 客户联系 account with GROUPS (and zhangsan's dismissed wrX); a submitted group
    broadcast to zhangsan's and lisi's groups unless `audience` says otherwise."""
    async with world.db.transaction() as s:
        account = ChannelAccount(kind="wecom.contact", name="客户联系", callback_token="t-wg")
        s.add(account)
        await s.flush()
        for chat_id, owner in GROUPS.items():
            s.add(CustomerGroup(account_id=account.id, chat_id=chat_id, owner_userid=owner))
        s.add(
            CustomerGroup(
                account_id=account.id, chat_id="wrX", owner_userid="zhangsan", dismissed_at=utcnow()
            )
        )
        account_id = account.id
    spec = {"kind": "wecom_groups", "account_id": account_id, "owners": ["zhangsan", "lisi"]}
    bid = await world.broadcast(
        order=[account_id], content=CONTENT, audience={**spec, **audience}, submit_now=False
    )
    async with world.db.transaction() as s:
        b = await world_get(s, bid)
        await submit(
            s,
            b,
            actor_id=None,
            policies=PolicyRegistry(),
            audiences=_audiences(),
            now=world.clock(),
        )
    return account_id, bid


async def world_get(s: AsyncSession, bid: int) -> Broadcast:
    found = await s.get(Broadcast, bid)
    assert found is not None
    return found


def _engine(world: World, channel: Any = None) -> BroadcastEngine:
    return world.engine(
        tasks=TaskChannels({"wecom.contact": channel or WeComGroupSendTasks()}),
        audiences=_audiences(),
    )


async def _until_quiet(engine: BroadcastEngine) -> None:
    for _ in range(20):
        if not (await engine.tick()).busy:
            return
    raise AssertionError("the engine never went quiet")


async def _tasks(world: World) -> dict[str, tuple[str, list[str]]]:
    async with world.db.reading() as s:
        out = {}
        for t in await s.scalars(select(GroupSendTask)):
            chats = await s.scalars(
                select(GroupSendRecipient.external_userid).where(GroupSendRecipient.task_id == t.id)
            )
            out[t.sender] = (t.chat_type, sorted(chats))
        return out


async def _statuses(world: World, bid: int) -> dict[str, tuple[str, str | None]]:
    return {
        r.address or "": (r.status, r.skip_reason or r.error) for r in await world.recipients(bid)
    }


async def test_one_group_task_per_owner_over_live_groups(world: World) -> None:
    _account, bid = await _group_broadcast(world)
    await _until_quiet(_engine(world))
    assert await _tasks(world) == {
        "lisi": ("group", ["wrC"]),
        "zhangsan": ("group", ["wrA", "wrB"]),
    }
    rows = await world.recipients(bid)
    assert {(r.address, r.customer_id, r.status) for r in rows} == {
        ("wrA", None, "queued"),
        ("wrB", None, "queued"),
        ("wrC", None, "queued"),
    }
    async with world.db.reading() as s:
        payloads = (await s.scalars(select(OutboxItem.payload))).all()
    # no groups picked: WeCom is not given chat_id_list, the owner chooses
    assert [(p["chat_type"], "chat_id_list" in p) for p in payloads] == [("group", False)] * 2


async def test_picked_groups_are_sent_as_chat_id_list(world: World) -> None:
    await _group_broadcast(world, chat_ids=["wrB", "wrD"])  # wrD: not a chosen owner's
    await _until_quiet(_engine(world))
    assert await _tasks(world) == {"zhangsan": ("group", ["wrB"])}
    async with world.db.reading() as s:
        (payload,) = (await s.scalars(select(OutboxItem.payload))).all()
    assert payload["chat_id_list"] == ["wrB"]


class _KilledMidway(WeComGroupSendTasks):
    """The process dies after the tasks were written, before the transaction commits."""

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
            session, run_id=run_id, account_id=account_id, content=content, recipients=recipients
        )
        raise SystemExit("killed")


async def test_crash_during_group_task_creation_leaves_exactly_one_task_per_owner(
    world: World,
) -> None:
    _account, bid = await _group_broadcast(world)
    with pytest.raises(SystemExit):
        await _until_quiet(_engine(world, _KilledMidway()))
    assert await _tasks(world) == {}
    assert {s for s, _ in (await _statuses(world, bid)).values()} == {"grouping"}
    world.clock.advance(seconds=world.settings.lease_seconds + 1)
    await _until_quiet(_engine(world))
    await _until_quiet(_engine(world))
    assert sorted(await _tasks(world)) == ["lisi", "zhangsan"]
    async with world.db.reading() as s:
        assert len((await s.scalars(select(OutboxItem))).all()) == 2


async def test_group_results_become_sent_not_sent_and_failed(world: World) -> None:
    _account, bid = await _group_broadcast(world)
    engine = _engine(world)
    await _until_quiet(engine)
    async with world.db.transaction() as s:  # what GroupSends.poll records
        results = {"wrA": 1, "wrB": 0, "wrC": 3}
        for row in await s.scalars(select(GroupSendRecipient)):
            row.status = results[row.external_userid]
        for task in await s.scalars(select(GroupSendTask)):
            task.status = "finished"
            s.add(GroupSendMember(task_id=task.id, userid=task.sender, status=CONFIRMED))
    await _until_quiet(engine)
    await engine.tick()
    statuses = await _statuses(world, bid)
    assert statuses["wrA"] == ("sent", None)
    assert statuses["wrB"] == ("skipped", "not_sent")
    assert statuses["wrC"][0] == "failed" and "monthly" in (statuses["wrC"][1] or "")
    run = await world.run_of(bid)
    assert run is not None and run.status == "completed"


async def test_group_dismissed_after_the_freeze_fails_without_a_task(world: World) -> None:
    _account_id, bid = await _group_broadcast(world, owners=["lisi"])
    async with world.db.transaction() as s:
        (run_id,) = await fire_due(s, world.clock())
        assert await freeze_run(s, run_id, _audiences(), world.clock()) == 1
    async with world.db.transaction() as s:
        group = await s.scalar(select(CustomerGroup).where(CustomerGroup.chat_id == "wrC"))
        assert group is not None
        group.dismissed_at = utcnow()
    channels = TaskChannels({"wecom.contact": WeComGroupSendTasks()})
    async with world.db.transaction() as s:
        assert await create_run_tasks(s, run_id, channels) == 1
    assert await _tasks(world) == {}
    status, why = (await _statuses(world, bid))["wrC"]
    assert status == "failed" and "dismissed" in (why or "")


async def test_estimate_counts_the_groups(world: World) -> None:
    account_id, bid = await _group_broadcast(world)
    async with world.db.reading() as s:
        report = await estimate(
            s, await world_get(s, bid), PolicyRegistry(), _audiences(), utcnow()
        )
    assert (report.recipients, report.by_account) == (3, {account_id: 3})
