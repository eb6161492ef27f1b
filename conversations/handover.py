"""Hand-over (离职继承) of a departed salesperson's customers and open conversations.

The store side happens here in one transaction and is recorded; moving the WeCom
external contacts (transfer_customer) is a provider call done afterwards by whoever
implements `CustomerTransfer` (the WeCom channel), reading the recorded hand-over."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ForeignKey, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .access import AccessDenied, Role, Viewer
from .actions import audit
from .db import Base, UTCDateTime, utcnow
from .models import BigId, Conversation, Customer, StaffUser


class Handover(Base):
    __tablename__ = "handovers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    to_staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    by_staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    customers: Mapped[int] = mapped_column(default=0)
    conversations: Mapped[int] = mapped_column(default=0)
    customer_ids: Mapped[list[Any]] = mapped_column(default=list)
    # pending → done | failed | not_needed: the provider-side transfer, if any
    transfer_status: Mapped[str] = mapped_column(String(16), default="pending")
    transfer_detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerTransfer(Protocol):
    """The provider side of a hand-over (WeCom 离职继承 transfer_customer)."""

    async def __call__(self, handover_id: int) -> None: ...


async def hand_over(
    session: AsyncSession,
    viewer: Viewer,
    *,
    from_staff_id: int,
    to_staff_id: int,
    deactivate: bool = True,
    ip: str | None = None,
) -> Handover:
    """Move customers and conversations from one salesperson to another; audited."""
    if viewer.role not in (Role.ADMIN, Role.MANAGER):
        raise AccessDenied("only admins and managers hand customers over")
    if from_staff_id == to_staff_id:
        raise ValueError("choose another salesperson")
    giver = await session.get(StaffUser, from_staff_id)
    taker = await session.get(StaffUser, to_staff_id)
    if giver is None or taker is None or not taker.active:
        raise LookupError("unknown or inactive salesperson")
    if viewer.role == Role.MANAGER and (
        viewer.team_id is None or giver.team_id != viewer.team_id or taker.team_id != viewer.team_id
    ):
        raise AccessDenied("managers hand over within their team")
    customer_ids = list(
        (await session.scalars(select(Customer.id).where(Customer.owner_id == from_staff_id))).all()
    )
    conv_count = await session.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.assignee_id == from_staff_id)
    )
    await session.execute(
        update(Customer).where(Customer.owner_id == from_staff_id).values(owner_id=to_staff_id)
    )
    await session.execute(
        update(Conversation)
        .where(Conversation.assignee_id == from_staff_id)
        .values(assignee_id=to_staff_id)
    )
    if deactivate:
        giver.active = False
    record = Handover(
        from_staff_id=from_staff_id,
        to_staff_id=to_staff_id,
        by_staff_id=viewer.staff_id,
        customers=len(customer_ids),
        conversations=int(conv_count or 0),
        customer_ids=customer_ids,
        transfer_status="pending" if giver.wecom_userid and customer_ids else "not_needed",
        created_at=utcnow(),
    )
    session.add(record)
    await session.flush()
    await audit(
        session,
        "handover",
        actor_id=viewer.staff_id,
        target_type="staff",
        target_id=from_staff_id,
        detail={
            "to": to_staff_id,
            "customers": record.customers,
            "conversations": record.conversations,
            "handover_id": record.id,
        },
        ip=ip,
    )
    return record
