"""Read models for the console and API: the inbox and a conversation's history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .access import AccessDenied, Role, Viewer, can_view, conversation_scope
from .actions import audit
from .models import ChannelAccount, Conversation, Customer, Message, StaffUser


@dataclass(frozen=True)
class InboxRow:
    conversation_id: int
    customer_id: int
    customer_name: str
    account_id: int
    account_name: str
    account_kind: str
    assignee_name: str | None
    status: str
    mode: str
    unread: int
    preview: str
    last_message_at: datetime | None


@dataclass(frozen=True)
class InboxFilter:
    account_id: int | None = None
    channel_kind: str | None = None
    mine_only: bool = False
    unassigned_only: bool = False
    status: str | None = None
    mode: str | None = None
    limit: int = 50
    offset: int = 0
    # more conditions from other packages (e.g. tagging: "customer has tag X")
    extra: tuple[ColumnElement[bool], ...] = ()


async def inbox(session: AsyncSession, viewer: Viewer, flt: InboxFilter) -> list[InboxRow]:
    """Conversations the viewer may see, newest activity first."""
    assignee = StaffUser.__table__.alias("assignee")
    query = (
        select(
            Conversation.id,
            Customer.id,
            Customer.display_name,
            ChannelAccount.id,
            ChannelAccount.name,
            ChannelAccount.kind,
            assignee.c.display_name,
            Conversation.status,
            Conversation.mode,
            Conversation.unread_count,
            Conversation.last_preview,
            Conversation.last_message_at,
        )
        .join(Customer, Customer.id == Conversation.customer_id)
        .join(ChannelAccount, ChannelAccount.id == Conversation.account_id)
        .outerjoin(assignee, assignee.c.id == Conversation.assignee_id)
        .where(conversation_scope(viewer))
        .order_by(Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc())
        .limit(flt.limit)
        .offset(flt.offset)
    )
    if flt.account_id is not None:
        query = query.where(Conversation.account_id == flt.account_id)
    if flt.channel_kind:
        query = query.where(ChannelAccount.kind.startswith(flt.channel_kind))
    if flt.mine_only:
        query = query.where(Conversation.assignee_id == viewer.staff_id)
    if flt.unassigned_only:
        query = query.where(Conversation.assignee_id.is_(None))
    if flt.status:
        query = query.where(Conversation.status == flt.status)
    if flt.mode:
        query = query.where(Conversation.mode == flt.mode)
    for condition in flt.extra:
        query = query.where(condition)
    rows = (await session.execute(query)).all()
    return [InboxRow(*row) for row in rows]


async def unread_total(session: AsyncSession, viewer: Viewer) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Conversation.unread_count), 0)).where(
            conversation_scope(viewer)
        )
    )
    return int(total or 0)


async def visible_conversation(
    session: AsyncSession, viewer: Viewer, conversation_id: int
) -> Conversation:
    """The conversation if the viewer may see it; AccessDenied / LookupError otherwise."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        raise LookupError(conversation_id)
    team = None
    if conv.assignee_id is not None:
        team = await session.scalar(
            select(StaffUser.team_id).where(StaffUser.id == conv.assignee_id)
        )
    if not can_view(viewer, conv, team):
        raise AccessDenied(f"conversation {conversation_id}")
    return conv


async def visible_customer(session: AsyncSession, viewer: Viewer, customer_id: int) -> Customer:
    """The customer if the viewer may see them: admins all; others through a conversation
    they may see, or as the customer's owner. AccessDenied / LookupError otherwise."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise LookupError(customer_id)
    if viewer.role == Role.ADMIN or customer.owner_id == viewer.staff_id:
        return customer
    seen = await session.scalar(
        select(Conversation.id)
        .where(Conversation.customer_id == customer_id, conversation_scope(viewer))
        .limit(1)
    )
    if seen is None:
        raise AccessDenied(f"customer {customer_id}")
    return customer


async def history(
    session: AsyncSession, conversation_id: int, limit: int = 200
) -> Sequence[Message]:
    rows = await session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return list(reversed(rows.all()))


async def open_conversation(
    session: AsyncSession,
    viewer: Viewer,
    conversation_id: int,
    *,
    ip: str | None = None,
    record_view: bool = False,
) -> Conversation:
    """`visible_conversation`, recording in the audit log a read of someone else's
    conversation when `record_view` (issue 9). A denial is recorded by the caller with
    `record_denial` after this transaction rolled back."""
    conv = await visible_conversation(session, viewer, conversation_id)
    if record_view and conv.assignee_id not in (None, viewer.staff_id):
        await audit(
            session,
            "conversation_viewed",
            actor_id=viewer.staff_id,
            target_type="conversation",
            target_id=conversation_id,
            detail={"assignee": conv.assignee_id},
            ip=ip,
        )
    return conv


async def record_denial(
    session: AsyncSession, viewer: Viewer, conversation_id: int, ip: str | None = None
) -> None:
    await audit(
        session,
        "conversation_denied",
        actor_id=viewer.staff_id,
        target_type="conversation",
        target_id=conversation_id,
        ip=ip,
    )
