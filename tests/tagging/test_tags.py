"""Manual and bulk tagging, single-select groups and tag history."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from conversations.db import Database
from tagging.models import CustomerTag, TagEvent
from tagging.segments import parse
from tagging.segments.compiler import CompileContext, compile_segment
from tagging.tags import (
    TagError,
    TagRef,
    Why,
    bulk_tag,
    bulk_tag_where,
    bulk_untag,
    create_group,
    create_tag,
    ensure_tag,
    tag_customer,
    tag_history,
    tags_of,
    untag_customer,
)
from tests.tagging import factories as f
from tests.tagging.test_segments import NOW


async def test_tagging_twice_adds_one_assignment_and_one_history_row(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        c = await f.customer(s)
        tag = await ensure_tag(s, TagRef.parse("意向/询价"))
        assert await tag_customer(s, c.id, tag.id, Why("manual", reason="asked for a quote"))
        assert not await tag_customer(s, c.id, tag.id, Why("manual"))
        history = await tag_history(s, c.id)
    assert [(e.action, e.reason) for e in history] == [("add", "asked for a quote")]


async def test_single_select_group_replaces_the_previous_tag(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        c = await f.customer(s)
        group = await create_group(s, "意向等级", exclusive=True)
        hot = await create_tag(s, group, "高")
        cold = await create_tag(s, group, "低")
        await tag_customer(s, c.id, cold.id, Why("manual"))
        await tag_customer(s, c.id, hot.id, Why("manual"))
        assert [t.name for t in await tags_of(s, c.id)] == ["高"]
        history = await tag_history(s, c.id)
    assert [(e.tag_id, e.action) for e in reversed(history)] == [
        (cold.id, "add"),
        (cold.id, "remove"),
        (hot.id, "add"),
    ]


async def test_untag_records_who_and_why(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        c = await f.customer(s, tags=("行业/制造",))
        tag = await ensure_tag(s, TagRef.parse("行业/制造"))
        assert await untag_customer(s, c.id, tag.id, Why("manual", reason="wrong industry"))
        assert not await untag_customer(s, c.id, tag.id, Why("manual"))
        latest = (await tag_history(s, c.id))[0]
    assert (latest.action, latest.reason) == ("remove", "wrong industry")


def test_tag_path_needs_group_and_name() -> None:
    with pytest.raises(TagError, match="group/name"):
        TagRef.parse("询价")


async def test_bulk_tag_adds_only_missing_and_writes_history(db: Database) -> None:
    async with db.transaction() as s:
        customers = [await f.customer(s, f"c{i}") for i in range(7)]
        tag = await ensure_tag(s, TagRef.parse("来源/展会"))
        await tag_customer(s, customers[0].id, tag.id, Why("manual"))
        added = await bulk_tag(s, tag.id, [c.id for c in customers], Why("bulk", actor_id=None))
        assigned = await s.scalar(select(func.count()).select_from(CustomerTag))
        events = await s.scalar(select(func.count()).select_from(TagEvent))
    assert (added, assigned, events) == (6, 7, 7)


async def test_bulk_tag_a_segment_in_a_single_select_group(db: Database) -> None:
    async with db.transaction() as s:
        group = await create_group(s, "等级", exclusive=True)
        vip = await create_tag(s, group, "VIP")
        normal = await create_tag(s, group, "普通")
        gd = [await f.customer(s, f"gd{i}", province="广东") for i in range(3)]
        other = await f.customer(s, "bj", province="北京")
        for c in [*gd, other]:
            await tag_customer(s, c.id, normal.id, Why("manual"))
        condition = await compile_segment(parse("region:广东"), CompileContext(s, NOW))
        added = await bulk_tag_where(s, vip.id, condition, Why("bulk", reason="campaign"))
        names = {c.id: [t.name for t in await tags_of(s, c.id)] for c in [*gd, other]}
    assert added == 3
    assert names == {gd[0].id: ["VIP"], gd[1].id: ["VIP"], gd[2].id: ["VIP"], other.id: ["普通"]}


async def test_bulk_untag_removes_and_records(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        a = await f.customer(s, "a", tags=("来源/展会",))
        b = await f.customer(s, "b")
        tag = await ensure_tag(s, TagRef.parse("来源/展会"))
        removed = await bulk_untag(s, tag.id, [a.id, b.id], Why("bulk"))
        history = await tag_history(s, a.id)
    assert removed == 1
    assert history[0].action == "remove"
