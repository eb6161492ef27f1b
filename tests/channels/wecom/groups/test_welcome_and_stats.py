"""Group welcome templates go through group_welcome_template/*, and groupchat/statistic
lands in the daily table the dashboard reads (with leaves from the history)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from channels.wecom.errors import WeComApiError
from channels.wecom.groups.models import GroupDailyStat, GroupWelcomeTemplate
from channels.wecom.groups.stats import beijing_day, daily_series, day_start, fetch_statistics
from channels.wecom.groups.sync import run_group_sync
from channels.wecom.groups.welcome import (
    TemplateError,
    create_template,
    delete_template,
    edit_template,
    refresh_template,
)
from conversations.db import utcnow
from tests.channels.wecom.groups.scene import api_of, contact_account
from tests.system import System

CORP = "wwgroupstat0001"
LINK = {"link": {"title": "新品发布", "url": "https://example.com/new"}}


async def _templates(system: System) -> list[GroupWelcomeTemplate]:
    async with system.services.db.reading() as s:
        return list((await s.scalars(select(GroupWelcomeTemplate))).all())


async def test_template_created_edited_and_deleted_through_the_api(sqlite_system: System) -> None:
    account = await contact_account(sqlite_system, CORP)
    api = await api_of(sqlite_system, account)
    db = sqlite_system.services.db
    row = await create_template(db, api, account.id, "欢迎加入！", LINK)
    held = sqlite_system.sim.groups.templates[CORP]
    assert held[row.template_id]["link"]["title"] == "新品发布"

    await edit_template(db, api, account.id, row.template_id, "欢迎新朋友")
    assert held[row.template_id] == {"text": {"content": "欢迎新朋友"}}
    assert [(t.text, t.attachment) for t in await _templates(sqlite_system)] == [("欢迎新朋友", {})]

    await delete_template(db, api, account.id, row.template_id)
    assert held == {} and await _templates(sqlite_system) == []


async def test_template_copy_takes_what_wecom_holds(sqlite_system: System) -> None:
    account = await contact_account(sqlite_system, CORP)
    api = await api_of(sqlite_system, account)
    row = await create_template(sqlite_system.services.db, api, account.id, "旧的")
    sqlite_system.sim.groups.templates[CORP][row.template_id] = {"text": {"content": "新的"}}
    await refresh_template(sqlite_system.services.db, api, account.id, row.template_id)
    assert [t.text for t in await _templates(sqlite_system)] == ["新的"]


def test_template_text_over_4000_bytes_is_refused_before_calling_wecom() -> None:
    from channels.wecom.groups.welcome import template_body

    with pytest.raises(TemplateError):
        template_body("欢" * 1334, {}, True)  # 4002 bytes in UTF-8


async def test_deleting_an_unknown_template_reports_wecom_error(sqlite_system: System) -> None:
    account = await contact_account(sqlite_system, CORP)
    with pytest.raises(WeComApiError):
        await delete_template(
            sqlite_system.services.db, await api_of(sqlite_system, account), account.id, "nope"
        )


async def test_daily_statistics_are_stored_per_owner_and_summed_per_day(system: System) -> None:
    account = await contact_account(system, CORP)
    sim = system.sim
    group = sim.groups.create_group(CORP, "zhangsan", "群", members=["wm01"])
    sim.groups.create_group(CORP, "lisi", "群2")
    api = await api_of(system, account)
    await run_group_sync(system.services.db, account.id, api)
    yesterday = beijing_day(utcnow()) - timedelta(days=1)
    begin = int(day_start(yesterday).timestamp())
    sim.groups.set_statistic(
        CORP, "zhangsan", begin, member_total=30, new_member_cnt=4, msg_total=120, member_has_msg=9
    )
    sim.groups.set_statistic(
        CORP, "lisi", begin, member_total=10, new_member_cnt=1, msg_total=5, member_has_msg=2
    )
    assert await fetch_statistics(system.services.db, api, account.id, yesterday) == 2
    # fetching the same day again updates the rows instead of adding new ones
    assert await fetch_statistics(system.services.db, api, account.id, yesterday) == 2
    sim.groups.leave(CORP, group.chat_id, ["wm01"])
    await run_group_sync(system.services.db, account.id, api)  # the leave: today
    async with system.services.db.reading() as s:
        assert len((await s.scalars(select(GroupDailyStat))).all()) == 2
        series = await daily_series(s, yesterday, yesterday + timedelta(days=1))
        mine = await daily_series(s, yesterday, yesterday, owners=["lisi"])
    assert [(d.members, d.new_members, d.messages, d.active_members) for d in series] == [
        (40, 5, 125, 11),
        (0, 0, 0, 0),
    ]
    assert [d.left_members for d in series] == [0, 1]
    assert mine[0].members == 10


async def test_statistics_older_than_180_days_are_refused(sqlite_system: System) -> None:
    account = await contact_account(sqlite_system, CORP)
    sqlite_system.sim.groups.create_group(CORP, "zhangsan", "群")
    api = await api_of(sqlite_system, account)
    await run_group_sync(sqlite_system.services.db, account.id, api)
    with pytest.raises(WeComApiError) as caught:
        await fetch_statistics(
            sqlite_system.services.db, api, account.id, beijing_day(utcnow()) - timedelta(days=200)
        )
    assert caught.value.errcode == 40058


async def test_simulated_by_day_statistics_sum_owners_and_cap_the_range_at_30_days(
    sqlite_system: System,
) -> None:
    account = await contact_account(sqlite_system, CORP)
    api = await api_of(sqlite_system, account)
    sim = sqlite_system.sim
    day = beijing_day(utcnow()) - timedelta(days=2)
    begin = int(day_start(day).timestamp())
    sim.groups.set_statistic(CORP, "zhangsan", begin, msg_total=7)
    sim.groups.set_statistic(CORP, "lisi", begin, msg_total=3)
    path = "/cgi-bin/externalcontact/groupchat/statistic_group_by_day"
    owners = {"userid_list": ["zhangsan", "lisi"]}
    data = await api.call(
        "POST",
        path,
        body={"day_begin_time": begin, "day_end_time": begin + 86400, "owner_filter": owners},
    )
    assert [(i["stat_time"], i["data"]["msg_total"]) for i in data["items"]] == [
        (begin, 10),
        (begin + 86400, 0),
    ]
    with pytest.raises(WeComApiError):
        await api.call(
            "POST",
            path,
            body={
                "day_begin_time": begin - 40 * 86400,
                "day_end_time": begin,
                "owner_filter": owners,
            },
        )
