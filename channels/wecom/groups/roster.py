"""Who is in a customer group: joins and leaves from events and from groupchat/get, each
one recorded once in the membership history, and external members linked to the
customers crmbot knows.

Shared by the event handler (one change at a time, no network) and the sync (whole
groups); every write is an upsert keyed by (group, member) and (group, member, change,
time), so replaying an event or a sync page changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.wecom.models import FollowRelation
from conversations.models import ChannelAccount, Identity

from .models import EXTERNAL_MEMBER, STAFF_MEMBER, CustomerGroup, GroupMember, GroupMembershipChange

# external_userid prefixes: wm… (WeChat user), wo… (WeChat user of another corp's app)
EXTERNAL_PREFIXES = ("wm", "wo")


def member_type_of(member_id: str) -> int:
    """Events name members only by id: external contacts carry a wm/wo prefix."""
    return EXTERNAL_MEMBER if member_id.startswith(EXTERNAL_PREFIXES) else STAFF_MEMBER


def _epoch(value: Any) -> datetime | None:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None


async def group_for(session: AsyncSession, account: ChannelAccount, chat_id: str) -> CustomerGroup:
    """The stored group, or a new one to be filled by groupchat/get (needs_refresh)."""
    group = await session.scalar(
        select(CustomerGroup).where(
            CustomerGroup.account_id == account.id, CustomerGroup.chat_id == chat_id
        )
    )
    if group is None:
        group = CustomerGroup(
            account_id=account.id,
            corp_id=str((account.config or {}).get("corp_id") or ""),
            chat_id=chat_id,
            needs_refresh=True,
        )
        session.add(group)
        await session.flush()
    return group


async def linked_customer(
    session: AsyncSession, account_id: int, external_userid: str
) -> int | None:
    """The customer behind an external member: the follow relation on this 客户联系 account
    first, else any WeCom identity with that external_userid."""
    customer_id = await session.scalar(
        select(FollowRelation.customer_id)
        .where(
            FollowRelation.account_id == account_id,
            FollowRelation.external_userid == external_userid,
        )
        .limit(1)
    )
    if customer_id is not None:
        return int(customer_id)
    found = await session.scalar(
        select(Identity.customer_id)
        .where(Identity.external_id == external_userid, Identity.channel_kind.like("wecom%"))
        .order_by(Identity.id)
        .limit(1)
    )
    return int(found) if found is not None else None


async def _record(
    session: AsyncSession,
    group: CustomerGroup,
    member_id: str,
    change: str,
    at: datetime,
    scene: int | None,
    source: str,
) -> None:
    exists = await session.scalar(
        select(GroupMembershipChange.id).where(
            GroupMembershipChange.group_id == group.id,
            GroupMembershipChange.member_id == member_id,
            GroupMembershipChange.change == change,
            GroupMembershipChange.at == at,
        )
    )
    if exists is None:
        session.add(
            GroupMembershipChange(
                group_id=group.id,
                member_id=member_id,
                change=change,
                at=at,
                scene=scene,
                source=source,
            )
        )


async def _member(
    session: AsyncSession, group: CustomerGroup, member_id: str
) -> GroupMember | None:
    return await session.scalar(
        select(GroupMember).where(
            GroupMember.group_id == group.id, GroupMember.member_id == member_id
        )
    )


async def member_joined(
    session: AsyncSession,
    group: CustomerGroup,
    member_id: str,
    when: datetime,
    *,
    scene: int | None,
    source: str,
    member_type: int | None = None,
    invitor: str = "",
) -> GroupMember:
    """A member is in the group since `when` (a replay older than a later leave is ignored)."""
    member = await _member(session, group, member_id)
    kind = member_type or member_type_of(member_id)
    if member is None:
        member = GroupMember(
            group_id=group.id,
            member_id=member_id,
            member_type=kind,
            join_time=when,
            join_scene=scene,
            invitor_userid=invitor,
        )
        session.add(member)
        await _record(session, group, member_id, "join", when, scene, source)
    elif member.left_at is not None and member.left_at <= when:
        member.left_at = None  # joined again after leaving
        member.quit_scene = None
        member.join_time = when
        member.join_scene = scene
        member.invitor_userid = invitor or member.invitor_userid
        await _record(session, group, member_id, "join", when, scene, source)
    if kind == EXTERNAL_MEMBER and member.customer_id is None:
        member.customer_id = await linked_customer(session, group.account_id, member_id)
    await session.flush()
    return member


async def member_left(
    session: AsyncSession,
    group: CustomerGroup,
    member_id: str,
    when: datetime,
    *,
    quit_scene: int | None,
    source: str,
) -> None:
    """A member left (or was removed) at `when`; a replay older than a re-join is ignored."""
    member = await _member(session, group, member_id)
    if member is None:
        # we never saw the join (before the first sync): keep the leave in the history
        member = GroupMember(
            group_id=group.id, member_id=member_id, member_type=member_type_of(member_id)
        )
        session.add(member)
    elif member.left_at is not None or (member.join_time is not None and member.join_time > when):
        return
    member.left_at = when
    member.quit_scene = quit_scene
    if member.member_type == EXTERNAL_MEMBER and member.customer_id is None:
        member.customer_id = await linked_customer(session, group.account_id, member_id)
    await _record(session, group, member_id, "leave", when, quit_scene, source)
    await session.flush()


async def apply_detail(
    session: AsyncSession,
    account: ChannelAccount,
    detail: Mapping[str, Any],
    now: datetime,
    *,
    owner_status: int | None = None,
) -> CustomerGroup:
    """Store one groupchat/get `group_chat` (doc 92122): the group and its member list;
    members we had that are no longer listed left before `now`."""
    group = await group_for(session, account, str(detail["chat_id"]))
    group.name = str(detail.get("name") or "")
    group.owner_userid = str(detail.get("owner") or "")
    group.notice = str(detail.get("notice") or "")
    group.created_at = _epoch(detail.get("create_time")) or group.created_at
    group.admin_userids = [str(a.get("userid", "")) for a in detail.get("admin_list") or []]
    group.member_version = str(detail.get("member_version") or "")
    if owner_status is not None:
        group.owner_status = owner_status
    group.needs_refresh = False
    group.synced_at = now
    listed: set[str] = set()
    for row in detail.get("member_list") or []:
        member_id = str(row.get("userid") or "")
        if not member_id:
            continue
        listed.add(member_id)
        joined = _epoch(row.get("join_time")) or now
        member = await member_joined(
            session,
            group,
            member_id,
            joined,
            scene=int(row["join_scene"]) if row.get("join_scene") is not None else None,
            source="sync",
            member_type=int(row.get("type") or member_type_of(member_id)),
            invitor=str((row.get("invitor") or {}).get("userid") or ""),
        )
        if member.left_at is not None:  # listed, so present: an older leave is superseded
            member.left_at = None
            member.quit_scene = None
        member.name = str(row.get("name") or member.name)
        member.group_nickname = str(row.get("group_nickname") or "")
        member.unionid = str(row.get("unionid") or member.unionid)
        if member.member_type == EXTERNAL_MEMBER and member.customer_id is None:
            member.customer_id = await linked_customer(session, account.id, member_id)
    present = (
        await session.scalars(
            select(GroupMember).where(
                GroupMember.group_id == group.id, GroupMember.left_at.is_(None)
            )
        )
    ).all()
    for gone in present:
        if gone.member_id not in listed:
            await member_left(session, group, gone.member_id, now, quit_scene=None, source="sync")
    return group
