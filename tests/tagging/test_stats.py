"""Statistics queries return plain buckets for the charts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from conversations.db import Database
from tagging.models import TagGroup
from tagging.stats import Bucket, distribution, new_customers_per_day, tag_group_distribution
from tests.tagging import factories as f


async def test_distribution_counts_unknown_values(db: Database) -> None:
    async with db.transaction() as s:
        await f.customer(s, "a", province="广东")
        await f.customer(s, "b", province="广东")
        await f.customer(s, "c")
        result = await distribution(s, "province")
    assert result == [Bucket("广东", 2), Bucket("unknown", 1)]


async def test_tag_group_distribution_includes_empty_tags(db: Database) -> None:
    async with db.transaction() as s:
        await f.customer(s, "a", tags=("意向/询价",))
        await f.customer(s, "b", tags=("意向/询价", "意向/成交"))
        group = await s.scalar(select(TagGroup).where(TagGroup.name == "意向"))
        assert group is not None
        result = await tag_group_distribution(s, group.id)
    assert result == [Bucket("询价", 2), Bucket("成交", 1)]


async def test_new_customers_are_counted_per_local_day(db: Database) -> None:
    async with db.transaction() as s:
        late = await f.customer(s, "late")
        # 17:00 UTC is already the next day in Shanghai
        late.created_at = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
        early = await f.customer(s, "early")
        early.created_at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
        await s.flush()
        result = await new_customers_per_day(
            s, date(2026, 11, 20), date(2026, 11, 22), ZoneInfo("Asia/Shanghai")
        )
    assert result == [
        Bucket("2026-11-20", 1),
        Bucket("2026-11-21", 1),
        Bucket("2026-11-22", 0),
    ]


async def test_unknown_dimension_is_refused(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        with pytest.raises(ValueError, match="unknown dimension"):
            await distribution(s, "shoe_size")
