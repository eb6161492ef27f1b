"""WeCom corp tag sync planning and local apply.

Fixture shape: get_corp_tag_list response as documented by WeCom
("获取企业标签库", externalcontact/get_corp_tag_list), names changed to Chinese examples."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from conversations.db import Database
from tagging.models import Tag
from tagging.tags import TagRef, Why, ensure_tag, tag_customer, tags_of
from tagging.wecom_sync import (
    LocalTagState,
    RemoteGroup,
    RemoteTag,
    apply_plan_locally,
    apply_remote_customer_tags,
    customer_remote_tag_ids,
    load_local_state,
    plan_mark,
    plan_sync,
    record_remote_ids,
)
from tests.tagging import factories as f

FIXTURE = Path(__file__).parent / "fixtures" / "get_corp_tag_list.json"


def remote_groups() -> list[RemoteGroup]:
    return [RemoteGroup.from_api(g) for g in json.loads(FIXTURE.read_text())["tag_group"]]


def test_same_names_are_linked_and_local_only_tags_created_remotely() -> None:
    local = [
        LocalTagState(1, 10, "意向", "询价", None, None, False),
        LocalTagState(2, 10, "意向", "复购", None, None, False),
    ]
    plan = plan_sync(remote_groups(), local)
    assert plan.link_groups == [(10, "TAG_GROUPID1")]
    assert plan.link_tags == [(1, "TAG_ID1")]
    assert [(c.wecom_group_id, c.tag_names) for c in plan.create_remote] == [
        ("TAG_GROUPID1", ("复购",))
    ]
    assert [t.id for _, t in plan.create_local] == ["TAG_ID3"]  # deleted TAG_ID2 is skipped


def test_remote_rename_wins_and_remote_delete_archives() -> None:
    local = [
        LocalTagState(1, 10, "意向", "问价", "TAG_ID1", "TAG_GROUPID1", False),
        LocalTagState(2, 10, "意向", "已流失", "TAG_ID2", "TAG_GROUPID1", False),
        LocalTagState(3, 10, "意向", "成交", "TAG_ID3", "TAG_GROUPID1", False),
    ]
    plan = plan_sync(remote_groups(), local)
    assert plan.rename_tags == [(1, "询价")]
    assert plan.archive_tags == [2]
    assert plan.create_local == [] and plan.create_remote == []


def test_mark_plan_adds_and_removes_the_difference() -> None:
    assert plan_mark({"a", "b"}, {"b", "c"}) == (["a"], ["c"])


async def test_sync_round_trip_leaves_nothing_to_do(db: Database) -> None:
    async with db.transaction() as s:
        await ensure_tag(s, TagRef.parse("意向/询价"))
        await ensure_tag(s, TagRef.parse("意向/复购"))
        plan = plan_sync(remote_groups(), await load_local_state(s))
        await apply_plan_locally(s, plan)
        (creation,) = plan.create_remote
        await record_remote_ids(s, creation, "TAG_GROUPID1", ["TAG_ID9"])
        remote = remote_groups()
        again = plan_sync(
            [
                RemoteGroup(
                    remote[0].group_id,
                    remote[0].name,
                    (*remote[0].tags, RemoteTag("TAG_ID9", "复购")),
                )
            ],
            await load_local_state(s),
        )
        names = sorted((t.name, t.wecom_tag_id) for t in await s.scalars(select(Tag)))
    assert again.empty
    assert names == [("复购", "TAG_ID9"), ("成交", "TAG_ID3"), ("询价", "TAG_ID1")]


async def test_remote_customer_tags_are_mirrored_locally(sqlite_db: Database) -> None:
    async with sqlite_db.transaction() as s:
        await apply_plan_locally(s, plan_sync(remote_groups(), []))
        local_only = await ensure_tag(s, TagRef.parse("本地/手工"))
        c = await f.customer(s)
        await tag_customer(s, c.id, local_only.id, Why("manual"))
        assert await apply_remote_customer_tags(s, c.id, ["TAG_ID1", "TAG_ID3"]) == (2, 0)
        assert await apply_remote_customer_tags(s, c.id, ["TAG_ID3", "UNKNOWN"]) == (0, 1)
        names = sorted(t.name for t in await tags_of(s, c.id))
        remote_ids = await customer_remote_tag_ids(s, c.id)
    assert names == ["成交", "手工"]
    assert remote_ids == ["TAG_ID3"]
