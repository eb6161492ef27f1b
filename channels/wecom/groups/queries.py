"""Read-side of customer groups: group pickers (broadcasts), the console's list and
group page (members with their customers, join/leave history, archived timeline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Customer

from .models import (
    EXTERNAL_MEMBER,
    CustomerGroup,
    GroupMember,
    GroupMembershipChange,
    GroupMessage,
)
from .roster import linked_customer


async def groups_of_owners(
    session: AsyncSession, account_id: int, owner_userids: Sequence[str]
) -> list[str]:
    """Chat ids of the groups (not dismissed) these members own on a 客户联系 account."""
    if not owner_userids:
        return []
    rows = await session.scalars(
        select(CustomerGroup.chat_id)
        .where(
            CustomerGroup.account_id == account_id,
            CustomerGroup.owner_userid.in_(list(owner_userids)),
            CustomerGroup.dismissed_at.is_(None),
        )
        .order_by(CustomerGroup.id)
    )
    return list(rows.all())


@dataclass(frozen=True)
class GroupRow:
    group: CustomerGroup
    members: int


async def list_groups(
    session: AsyncSession,
    *,
    account_id: int | None = None,
    owner: str | None = None,
    only_owners: Sequence[str] | None = None,
    include_dismissed: bool = False,
    limit: int = 200,
) -> list[GroupRow]:
    """Groups for the console list; `only_owners` scopes a salesperson to their own."""
    query = select(CustomerGroup)
    if account_id is not None:
        query = query.where(CustomerGroup.account_id == account_id)
    if owner:
        query = query.where(CustomerGroup.owner_userid == owner)
    if only_owners is not None:
        query = query.where(CustomerGroup.owner_userid.in_(list(only_owners)))
    if not include_dismissed:
        query = query.where(CustomerGroup.dismissed_at.is_(None))
    groups = list(
        (await session.scalars(query.order_by(CustomerGroup.id.desc()).limit(limit))).all()
    )
    counts: dict[int, int] = {}
    if groups:
        members = await session.scalars(
            select(GroupMember.group_id).where(
                GroupMember.group_id.in_([g.id for g in groups]), GroupMember.left_at.is_(None)
            )
        )
        for group_id in members.all():
            counts[group_id] = counts.get(group_id, 0) + 1
    return [GroupRow(g, counts.get(g.id, 0)) for g in groups]


@dataclass(frozen=True)
class MemberRow:
    member: GroupMember
    customer: Customer | None


@dataclass(frozen=True)
class GroupPage:
    group: CustomerGroup
    members: list[MemberRow]  # present members first, then those who left
    history: list[GroupMembershipChange]  # newest first
    timeline: list[GroupMessage]  # oldest first


async def group_page(
    session: AsyncSession, group_id: int, *, timeline_limit: int = 200
) -> GroupPage | None:
    group = await session.get(CustomerGroup, group_id)
    if group is None:
        return None
    members = list(
        (
            await session.scalars(
                select(GroupMember).where(GroupMember.group_id == group.id).order_by(GroupMember.id)
            )
        ).all()
    )
    linked = {m.id: m.customer_id for m in members}
    for m in members:
        if m.customer_id is None and m.member_type == EXTERNAL_MEMBER:
            # the customer may have added a salesperson after joining: show the link now,
            # the next refresh or sync stores it
            linked[m.id] = await linked_customer(session, group.account_id, m.member_id)
    customer_ids = {c for c in linked.values() if c is not None}
    customers = (
        {
            c.id: c
            for c in (
                await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
            ).all()
        }
        if customer_ids
        else {}
    )
    rows = [MemberRow(m, customers.get(linked[m.id] or 0)) for m in members]
    rows.sort(key=lambda r: r.member.left_at is not None)
    history = list(
        (
            await session.scalars(
                select(GroupMembershipChange)
                .where(GroupMembershipChange.group_id == group.id)
                .order_by(GroupMembershipChange.at.desc(), GroupMembershipChange.id.desc())
                .limit(500)
            )
        ).all()
    )
    timeline = list(
        reversed(
            (
                await session.scalars(
                    select(GroupMessage)
                    .where(
                        GroupMessage.chat_id == group.chat_id, GroupMessage.corp_id == group.corp_id
                    )
                    .order_by(GroupMessage.sent_at.desc(), GroupMessage.id.desc())
                    .limit(timeline_limit)
                )
            ).all()
        )
    )
    return GroupPage(group, rows, history, timeline)
