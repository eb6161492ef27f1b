"""Segments compile to SQL and select the right customers on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from conversations.consent import opt_out
from conversations.db import Database
from tagging.models import CustomerFieldValue, CustomField
from tagging.segments import SegmentError, parse
from tagging.segments.service import (
    count_customers,
    customer_ids_page,
    definition_from,
    iter_customer_ids,
    save_segment,
)
from tests.tagging import factories as f

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


async def ids(db: Database, expression: str) -> set[int]:
    async with db.transaction() as s:
        found: set[int] = set()
        async for batch in iter_customer_ids(s, parse(expression), now=NOW, batch_size=2):
            found.update(batch)
        return found


async def test_tags_and_or_not_select_the_right_customers(db: Database) -> None:
    async with db.transaction() as s:
        a = await f.customer(s, "A", tags=("意向/询价", "行业/制造"))
        b = await f.customer(s, "B", tags=("意向/询价",))
        c = await f.customer(s, "C", tags=("行业/制造",))
        await f.customer(s, "D")
    assert await ids(db, 'tag:"意向/询价" AND tag:"行业/制造"') == {a.id}
    assert await ids(db, 'tag:"意向/询价" OR tag:"行业/制造"') == {a.id, b.id, c.id}
    assert await ids(db, 'tag:"意向/询价" AND NOT tag:"行业/制造"') == {b.id}
    assert await ids(db, 'tag:"意向/*"') == {a.id, b.id}


async def test_not_on_a_missing_profile_value_includes_the_customer(db: Database) -> None:
    async with db.transaction() as s:
        gd = await f.customer(s, "GD", province="广东", city="深圳")
        unknown = await f.customer(s, "unknown")
        bj = await f.customer(s, "BJ", province="北京", city="北京")
    assert await ids(db, "region:广东省") == {gd.id}
    assert await ids(db, "region:深圳市") == {gd.id}
    assert await ids(db, "NOT region:广东") == {unknown.id, bj.id}
    assert await ids(db, "region!=广东") == {unknown.id, bj.id}


async def test_dimensions_filter_in_sql(db: Database) -> None:
    async with db.transaction() as s:
        young = await f.customer(
            s,
            "young",
            gender="female",
            birth_date=date(2000, 5, 1),
            intent="high",
            hobbies=("钓鱼",),
        )
        old = await f.customer(s, "old", gender="male", birth_date=date(1960, 11, 25), intent="low")
    assert await ids(db, "gender:女") == {young.id}
    assert await ids(db, "age>=60") == {old.id}
    assert await ids(db, "age<30") == {young.id}
    assert await ids(db, "intent>=medium") == {young.id}
    assert await ids(db, "hobby:钓鱼") == {young.id}
    assert await ids(db, "birthday:7d") == {old.id}


async def test_last_contact_and_reachability(db: Database) -> None:
    async with db.transaction() as s:
        acc = await f.account(s, "sms.aliyun")
        recent = await f.customer(
            s, "recent", phone="+8613800000001", last_contact_at=NOW - timedelta(days=2)
        )
        stale = await f.customer(
            s, "stale", phone="+8613800000002", last_contact_at=NOW - timedelta(days=60)
        )
        never = await f.customer(s, "never")
        await f.identity(s, recent, acc, "+8613800000001")
        await f.identity(s, stale, acc, "+8613800000002")
        await opt_out(s, channel="sms", address="+8613800000002", source="reply")
    assert await ids(db, "last_contact<7d") == {recent.id}
    assert await ids(db, "last_contact>30d") == {stale.id}
    assert await ids(db, "last_contact:never") == {never.id}
    assert await ids(db, "reachable:sms AND NOT optout:sms") == {recent.id}
    assert await ids(db, "optout:sms") == {stale.id}


async def test_custom_number_field_compares(db: Database) -> None:
    async with db.transaction() as s:
        field = CustomField(key="budget", label="预算", kind="number", choices=[])
        s.add(field)
        rich = await f.customer(s, "rich")
        poor = await f.customer(s, "poor")
        await s.flush()
        s.add(CustomerFieldValue(customer_id=rich.id, field_id=field.id, value_number=50000))
        s.add(CustomerFieldValue(customer_id=poor.id, field_id=field.id, value_number=100))
    assert await ids(db, "field.budget>=10000") == {rich.id}


async def test_unknown_tag_is_an_error_with_its_position(db: Database) -> None:
    async with db.transaction() as s:
        with pytest.raises(SegmentError, match="unknown tag") as info:
            await count_customers(s, parse('region:广东 AND tag:"意向/没有"'), now=NOW)
    assert info.value.position == 14


async def test_unknown_field_lists_the_known_ones(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        with pytest.raises(SegmentError, match="known: .*region"):
            await count_customers(s, parse("regoin:广东"), now=NOW)


async def test_merged_customers_are_never_in_a_segment(db: Database) -> None:
    async with db.transaction() as s:
        keep = await f.customer(s, "keep", tags=("意向/询价",))
        gone = await f.customer(s, "gone", tags=("意向/询价",))
        gone.merged_into_id = keep.id
    assert await ids(db, 'tag:"意向/询价"') == {keep.id}


async def test_json_ast_and_text_give_the_same_count(db: Database) -> None:
    async with db.transaction() as s:
        await f.customer(s, "A", tags=("意向/询价",), province="广东")
        await f.customer(s, "B", tags=("意向/询价",), province="北京")
        by_text = definition_from(expression='tag:"意向/询价" AND NOT region:北京')
        by_json = definition_from(
            ast={
                "and": [
                    {"field": "tag", "op": ":", "value": "意向/询价"},
                    {"not": {"field": "region", "op": ":", "value": "北京"}},
                ]
            }
        )
        assert by_text.node == by_json.node
        assert await count_customers(s, by_json, now=NOW) == 1


async def test_ids_come_in_ascending_pages(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        made = [(await f.customer(s, f"c{i}", tags=("来源/展会",))).id for i in range(5)]
        node = parse('tag:"来源/展会"')
        first = await customer_ids_page(s, node, limit=3, now=NOW)
        rest = await customer_ids_page(s, node, after_id=first[-1], limit=3, now=NOW)
    assert first + rest == sorted(made)


async def test_saving_a_broken_segment_is_refused(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        with pytest.raises(SegmentError):
            await save_segment(s, "bad", definition_from(expression='tag:"无/此"'))
