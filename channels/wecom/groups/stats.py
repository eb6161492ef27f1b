"""Group statistics (群聊数据统计, doc 92133): groupchat/statistic per owner per day,
fetched daily into a table, and the per-day series the dashboard shows — members,
new members, members who left, messages and active members.

WeCom counts days from 00:00 Beijing time and has no "left" count: members who left
come from crmbot's own membership history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.wecom.api import WeComApi
from conversations.db import Database, utcnow

from .models import CustomerGroup, GroupDailyStat, GroupMembershipChange

BEIJING = ZoneInfo("Asia/Shanghai")
PATH = "/cgi-bin/externalcontact/groupchat/statistic"
OWNERS_PER_CALL = 100  # owner_filter.userid_list: at most 100
PAGE_LIMIT = 1000  # limit: 1 ~ 1000
FIELDS = (
    "new_chat_cnt",
    "chat_total",
    "chat_has_msg",
    "new_member_cnt",
    "member_total",
    "member_has_msg",
    "msg_total",
)


def day_start(day: date) -> datetime:
    """00:00 Beijing time of `day`, as an aware UTC datetime."""
    return datetime.combine(day, time(0), BEIJING).astimezone(UTC)


def beijing_day(moment: datetime) -> date:
    return moment.astimezone(BEIJING).date()


async def fetch_statistics(db: Database, api: WeComApi, account_id: int, day: date) -> int:
    """groupchat/statistic for every owner of the account's groups on `day`; rows stored."""
    async with db.reading() as s:
        owners = sorted(
            o
            for o in (
                await s.scalars(
                    select(CustomerGroup.owner_userid)
                    .where(CustomerGroup.account_id == account_id)
                    .distinct()
                )
            ).all()
            if o
        )
    begin = int(day_start(day).timestamp())
    items: list[dict[str, object]] = []
    for start in range(0, len(owners), OWNERS_PER_CALL):
        chunk = owners[start : start + OWNERS_PER_CALL]
        offset = 0
        while True:
            data = await api.call(
                "POST",
                PATH,
                body={
                    "day_begin_time": begin,
                    "day_end_time": begin,
                    "owner_filter": {"userid_list": chunk},
                    "order_by": 1,
                    "order_asc": 0,
                    "offset": offset,
                    "limit": PAGE_LIMIT,
                },
            )
            items.extend(data.get("items") or [])
            total = int(data.get("total") or 0)
            offset = int(data.get("next_offset") or total)
            if offset >= total:
                break
    async with db.transaction() as s:
        for item in items:
            owner = str(item.get("owner") or "")
            raw = item.get("data")
            values = raw if isinstance(raw, dict) else {}
            row = await s.scalar(
                select(GroupDailyStat).where(
                    GroupDailyStat.account_id == account_id,
                    GroupDailyStat.day == day,
                    GroupDailyStat.owner_userid == owner,
                )
            )
            if row is None:
                row = GroupDailyStat(account_id=account_id, day=day, owner_userid=owner)
                s.add(row)
            for name in FIELDS:
                setattr(row, name, int(values.get(name) or 0))
            row.fetched_at = utcnow()
    return len(items)


async def fetch_recent(
    db: Database, api: WeComApi, account_id: int, *, today: date | None = None, days: int = 1
) -> int:
    """The daily job: the last `days` complete days (WeCom publishes a day after it ends)."""
    today = today or beijing_day(utcnow())
    stored = 0
    for back in range(days, 0, -1):
        stored += await fetch_statistics(db, api, account_id, today - timedelta(days=back))
    return stored


@dataclass(frozen=True)
class DayStats:
    day: date
    members: int
    new_members: int
    left_members: int
    messages: int
    active_members: int


async def daily_series(
    session: AsyncSession,
    since: date,
    until: date,
    *,
    owners: Sequence[str] | None = None,
) -> list[DayStats]:
    """One row per day in [since, until]: WeCom's counts summed over owners (all, or
    `owners`), plus members who left according to crmbot's membership history."""
    query = select(GroupDailyStat).where(GroupDailyStat.day >= since, GroupDailyStat.day <= until)
    if owners is not None:
        query = query.where(GroupDailyStat.owner_userid.in_(list(owners)))
    sums: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (await session.scalars(query)).all():
        for name in FIELDS:
            sums[row.day][name] += int(getattr(row, name))
    leaves = select(GroupMembershipChange.at).where(
        GroupMembershipChange.change == "leave",
        GroupMembershipChange.at >= day_start(since),
        GroupMembershipChange.at < day_start(until + timedelta(days=1)),
    )
    if owners is not None:
        leaves = leaves.join(
            CustomerGroup, CustomerGroup.id == GroupMembershipChange.group_id
        ).where(CustomerGroup.owner_userid.in_(list(owners)))
    left: dict[date, int] = defaultdict(int)
    for at in (await session.scalars(leaves)).all():
        left[beijing_day(at)] += 1
    out = []
    day = since
    while day <= until:
        counts = sums.get(day, {})
        out.append(
            DayStats(
                day=day,
                members=counts.get("member_total", 0),
                new_members=counts.get("new_member_cnt", 0),
                left_members=left.get(day, 0),
                messages=counts.get("msg_total", 0),
                active_members=counts.get("member_has_msg", 0),
            )
        )
        day += timedelta(days=1)
    return out
