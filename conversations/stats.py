"""Managers' numbers: per-salesperson response times, workload and customers gained or
lost, and the dashboard series (messages per day by channel, response time per day)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import mean

from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from .access import AccessDenied, Role, Viewer
from .models import ChannelAccount, ChannelEvent, Conversation, Customer, Message, StaffUser

# WeCom 客户联系 events meaning a customer relationship ended
LOST_EVENTS = (
    "wecom.change_external_contact.del_follow_user",
    "wecom.change_external_contact.del_external_contact",
)
LOCAL_OFFSET_HOURS = 8  # reports are by Beijing day (Asia/Shanghai has no DST)


@dataclass
class StaffStats:
    staff_id: int
    name: str
    conversations_handled: int = 0
    replies: int = 0
    first_response_seconds: list[float] = field(default_factory=list)
    response_seconds: list[float] = field(default_factory=list)
    unanswered: int = 0
    customers_gained: int = 0
    customers_lost: int = 0

    @property
    def first_response_avg(self) -> float | None:
        return mean(self.first_response_seconds) if self.first_response_seconds else None

    @property
    def response_avg(self) -> float | None:
        return mean(self.response_seconds) if self.response_seconds else None


def may_see_stats(viewer: Viewer) -> bool:
    return viewer.role in (Role.ADMIN, Role.MANAGER)


async def _staff_in_scope(session: AsyncSession, viewer: Viewer) -> list[StaffUser]:
    query = select(StaffUser).where(StaffUser.role.in_((Role.SALES.value, Role.MANAGER.value)))
    if viewer.role == Role.MANAGER:
        query = query.where(StaffUser.team_id == viewer.team_id)
    return list((await session.scalars(query.order_by(StaffUser.display_name))).all())


async def staff_statistics(
    session: AsyncSession, viewer: Viewer, since: datetime, until: datetime
) -> list[StaffStats]:
    """One row per salesperson the viewer manages, over [since, until)."""
    if not may_see_stats(viewer):
        raise AccessDenied("statistics are for admins and managers")
    staff = await _staff_in_scope(session, viewer)
    by_id = {s.id: StaffStats(s.id, s.display_name) for s in staff}
    if not by_id:
        return []
    rows = (
        await session.execute(
            select(
                Message.conversation_id,
                Message.direction,
                Message.sender_type,
                Message.sender_staff_id,
                Message.occurred_at,
            )
            .where(Message.occurred_at >= since, Message.occurred_at < until)
            .order_by(Message.conversation_id, Message.occurred_at, Message.id)
        )
    ).all()
    handled: dict[int, set[int]] = defaultdict(set)
    current: int | None = None
    waiting_since: datetime | None = None
    first_done = False
    for conv_id, direction, sender_type, staff_id, at in rows:
        if conv_id != current:
            current, waiting_since, first_done = conv_id, None, False
        if direction == "in":
            if waiting_since is None:
                waiting_since = at
            continue
        if sender_type != "staff" or staff_id not in by_id:
            continue
        st = by_id[staff_id]
        st.replies += 1
        handled[staff_id].add(conv_id)
        if waiting_since is not None:
            delay = (at - waiting_since).total_seconds()
            st.response_seconds.append(delay)
            if not first_done:
                st.first_response_seconds.append(delay)
            waiting_since = None
        first_done = True
    for staff_id, convs in handled.items():
        by_id[staff_id].conversations_handled = len(convs)
    await _unanswered(session, by_id)
    gained = await session.execute(
        select(Customer.owner_id, func.count())
        .where(
            Customer.owner_id.in_(by_id),
            Customer.created_at >= since,
            Customer.created_at < until,
        )
        .group_by(Customer.owner_id)
    )
    for owner, count in gained.all():
        if owner is not None:
            by_id[owner].customers_gained = int(count)
    wecom_ids = {s.wecom_userid: s.id for s in staff if s.wecom_userid}
    if wecom_ids:
        lost = await session.execute(
            select(ChannelEvent.staff_external_id, func.count())
            .where(
                ChannelEvent.event_type.in_(LOST_EVENTS),
                ChannelEvent.staff_external_id.in_(wecom_ids),
                ChannelEvent.occurred_at >= since,
                ChannelEvent.occurred_at < until,
            )
            .group_by(ChannelEvent.staff_external_id)
        )
        for userid, count in lost.all():
            if userid is not None:
                by_id[wecom_ids[userid]].customers_lost = int(count)
    return list(by_id.values())


async def _unanswered(session: AsyncSession, by_id: dict[int, StaffStats]) -> None:
    """Open conversations whose customer spoke after the last staff reply (or never got one)."""
    last_reply = (
        select(func.max(Message.occurred_at))
        .where(Message.conversation_id == Conversation.id, Message.sender_type == "staff")
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Conversation.assignee_id, func.count())
        .where(
            Conversation.assignee_id.in_(by_id),
            Conversation.status == "open",
            Conversation.last_inbound_at.is_not(None),
            (last_reply.is_(None)) | (Conversation.last_inbound_at > last_reply),
        )
        .group_by(Conversation.assignee_id)
    )
    for staff_id, count in rows.all():
        if staff_id is not None:
            by_id[staff_id].unanswered = int(count)


def _local_day(session: AsyncSession) -> object:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("Asia/Shanghai", Message.occurred_at), Date)
    return func.date(Message.occurred_at, literal_column(f"'+{LOCAL_OFFSET_HOURS} hours'"))


async def messages_per_day(
    session: AsyncSession, since: datetime, until: datetime
) -> dict[str, dict[date, int]]:
    """Channel kind → Beijing day → messages (both directions)."""
    day = _local_day(session)
    rows = await session.execute(
        select(ChannelAccount.kind, day, func.count())  # type: ignore[call-overload]
        .join(ChannelAccount, ChannelAccount.id == Message.account_id)
        .where(Message.occurred_at >= since, Message.occurred_at < until)
        .group_by(ChannelAccount.kind, day)
    )
    out: dict[str, dict[date, int]] = defaultdict(dict)
    for kind, d, count in rows.all():
        key = d if isinstance(d, date) else date.fromisoformat(str(d))
        out[str(kind)][key] = int(count)
    return dict(out)


def days_between(since: datetime, until: datetime) -> list[date]:
    start = (since + timedelta(hours=LOCAL_OFFSET_HOURS)).date()
    end = (until + timedelta(hours=LOCAL_OFFSET_HOURS)).date()
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


async def response_time_per_day(
    session: AsyncSession, since: datetime, until: datetime
) -> dict[date, float]:
    """Beijing day → average seconds between a customer's message and the staff reply."""
    rows = (
        await session.execute(
            select(
                Message.conversation_id, Message.direction, Message.sender_type, Message.occurred_at
            )
            .where(Message.occurred_at >= since, Message.occurred_at < until)
            .order_by(Message.conversation_id, Message.occurred_at, Message.id)
        )
    ).all()
    per_day: dict[date, list[float]] = defaultdict(list)
    current: int | None = None
    waiting: datetime | None = None
    for conv_id, direction, sender_type, at in rows:
        if conv_id != current:
            current, waiting = conv_id, None
        if direction == "in":
            waiting = waiting or at
        elif sender_type == "staff" and waiting is not None:
            day = (waiting + timedelta(hours=LOCAL_OFFSET_HOURS)).date()
            per_day[day].append((at - waiting).total_seconds())
            waiting = None
    return {d: mean(v) for d, v in per_day.items()}
