"""What staff do to a conversation besides replying: assign/transfer, close/reopen and
the bot/human switch. Each checks the viewer's scope here, not in the console."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .access import AccessDenied, Role, Viewer
from .actions import audit
from .db import utcnow
from .models import Conversation, StaffUser
from .queries import visible_conversation

STATUSES = ("open", "closed")
MODES = ("bot", "human")


async def assign(
    session: AsyncSession,
    viewer: Viewer,
    conversation_id: int,
    assignee_id: int | None,
    *,
    ip: str | None = None,
) -> Conversation:
    """Assign (or transfer) a conversation. Sales may only take it or give it away to a
    teammate; managers assign within their team; admins anywhere."""
    conv = await visible_conversation(session, viewer, conversation_id)
    target: StaffUser | None = None
    if assignee_id is not None:
        target = await session.get(StaffUser, assignee_id)
        if target is None or not target.active or target.role == Role.MARKETER:
            raise LookupError("no such salesperson")
    if viewer.role in (Role.SALES, Role.MANAGER) and target is not None:
        same_team = viewer.team_id is not None and target.team_id == viewer.team_id
        if target.id != viewer.staff_id and not same_team:
            raise AccessDenied("assign within your team")
    before = conv.assignee_id
    conv.assignee_id = assignee_id
    if target is not None:
        # the customer follows the conversation when it had no salesperson yet
        from .models import Customer

        customer = await session.get(Customer, conv.customer_id)
        if customer is not None and customer.owner_id is None:
            customer.owner_id = target.id
    await audit(
        session,
        "conversation_assigned",
        actor_id=viewer.staff_id,
        target_type="conversation",
        target_id=conversation_id,
        detail={"from": before, "to": assignee_id},
        ip=ip,
    )
    return conv


async def set_status(
    session: AsyncSession, viewer: Viewer, conversation_id: int, status: str
) -> Conversation:
    if status not in STATUSES:
        raise ValueError(status)
    conv = await visible_conversation(session, viewer, conversation_id)
    conv.status = status
    if status == "closed":
        conv.unread_count = 0
    return conv


async def set_mode(
    session: AsyncSession, viewer: Viewer, conversation_id: int, mode: str
) -> Conversation:
    """Switch between the bot answering and a human handling the conversation."""
    if mode not in MODES:
        raise ValueError(mode)
    conv = await visible_conversation(session, viewer, conversation_id)
    if conv.mode != mode:
        conv.mode = mode
        conv.mode_changed_at = utcnow()
    return conv


async def assignable_staff(session: AsyncSession, viewer: Viewer) -> list[StaffUser]:
    """Who the viewer may hand a conversation to."""
    query = select(StaffUser).where(
        StaffUser.active.is_(True), StaffUser.role != Role.MARKETER.value
    )
    if viewer.role != Role.ADMIN:
        if viewer.team_id is None:
            query = query.where(StaffUser.id == viewer.staff_id)
        else:
            query = query.where(StaffUser.team_id == viewer.team_id)
    return list((await session.scalars(query.order_by(StaffUser.display_name))).all())
