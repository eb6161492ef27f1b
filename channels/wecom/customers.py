"""What crmbot records about external contacts (外部联系人): the customer and its
identity, the follow relation to each salesperson and the follow-up owner (跟进人).

Shared by the event handlers (one contact at a time) and the full sync (pages of them);
every write is an upsert, so replaying an event or a sync page changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.actions import resolve_identity
from conversations.db import utcnow
from conversations.models import ChannelAccount, Customer, StaffUser

from .models import FollowRelation


async def staff_by_userid(session: AsyncSession, userid: str) -> StaffUser | None:
    """The console user whose WeCom userid this is (StaffUser.wecom_userid)."""
    if not userid:
        return None
    return await session.scalar(
        select(StaffUser).where(StaffUser.wecom_userid == userid, StaffUser.active.is_(True))
    )


async def upsert_follow(
    session: AsyncSession,
    account: ChannelAccount,
    external_userid: str,
    userid: str,
    *,
    name: str | None = None,
    unionid: str | None = None,
    state: str | None = None,
    remark: str | None = None,
    tag_ids: list[str] | None = None,
    add_way: int | None = None,
    added_at: datetime | None = None,
) -> FollowRelation:
    """Customer + identity + active follow relation; the salesperson becomes the follow-up
    owner when the customer has none yet."""
    hints = {"external_userid": external_userid}
    if unionid:
        hints["unionid"] = unionid  # links the same person seen on a WeChat official account
    identity = await resolve_identity(
        session, account, external_userid, display_name=name, hints=hints
    )
    customer = await session.get(Customer, identity.customer_id)
    assert customer is not None
    if name:
        if identity.display_name != name:
            identity.display_name = name
        if customer.display_name in ("", external_userid):
            customer.display_name = name
    if unionid and not customer.wecom_unionid:
        customer.wecom_unionid = unionid
    if customer.owner_id is None:
        staff = await staff_by_userid(session, userid)
        if staff is not None:
            customer.owner_id = staff.id
    relation = await session.scalar(
        select(FollowRelation).where(
            FollowRelation.account_id == account.id,
            FollowRelation.external_userid == external_userid,
            FollowRelation.userid == userid,
        )
    )
    if relation is None:
        relation = FollowRelation(
            account_id=account.id,
            customer_id=customer.id,
            external_userid=external_userid,
            userid=userid,
            status="active",
            state=state or "",
            remark=remark or "",
            tag_ids=list(tag_ids or []),
            add_way=add_way,
            added_at=added_at or utcnow(),
        )
        session.add(relation)
        await session.flush()
        return relation
    relation.status = "active"
    relation.removed_at = None
    relation.customer_id = customer.id
    if state is not None and state:
        relation.state = state
    if remark is not None:
        relation.remark = remark
    if tag_ids is not None:
        relation.tag_ids = list(tag_ids)
    if add_way is not None:
        relation.add_way = add_way
    if added_at is not None and relation.added_at is None:
        relation.added_at = added_at
    return relation


async def end_follow(
    session: AsyncSession,
    account: ChannelAccount,
    external_userid: str,
    userid: str,
    status: str,
    when: datetime,
) -> FollowRelation | None:
    """Mark a relation ended (deleted_by_staff | deleted_by_customer | transferred);
    the owner moves to another active follower, or to nobody."""
    relation = await session.scalar(
        select(FollowRelation).where(
            FollowRelation.account_id == account.id,
            FollowRelation.external_userid == external_userid,
            FollowRelation.userid == userid,
        )
    )
    if relation is None:
        return None
    relation.status = status
    relation.removed_at = when
    customer = await session.get(Customer, relation.customer_id)
    staff = await staff_by_userid(session, userid)
    if customer is not None and staff is not None and customer.owner_id == staff.id:
        others = (
            await session.scalars(
                select(FollowRelation.userid).where(
                    FollowRelation.customer_id == customer.id,
                    FollowRelation.status == "active",
                    FollowRelation.id != relation.id,
                )
            )
        ).all()
        customer.owner_id = None
        for other in others:
            replacement = await staff_by_userid(session, other)
            if replacement is not None:
                customer.owner_id = replacement.id
                break
    return relation
