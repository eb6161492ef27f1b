"""Named state changes on the store. Each takes the caller's session (one transaction)
so that a handler's writes and its outbox rows commit together (DESIGN.md §3, §7)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import identities
from .db import utcnow
from .models import (
    AuditEntry,
    ChannelAccount,
    ChannelCursor,
    ChannelEvent,
    Conversation,
    Customer,
    Identity,
    Message,
    OutboxItem,
)
from .sql import insert_ignore_returning_id
from .types import (
    Direction,
    InboundEvent,
    InboundMessage,
    MessageKind,
    MessageStatus,
    Purpose,
    SenderType,
    StatusUpdate,
)

log = logging.getLogger(__name__)

PREVIEW_CHARS = 120

# A receipt never moves a message backwards (a late "sent" after "delivered").
_STATUS_RANK = {
    MessageStatus.PENDING: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
    MessageStatus.FAILED: 4,
    MessageStatus.CANCELLED: 4,
}


@dataclass
class RecordResult:
    """What `record_inbound` changed; ids are handed to the pipeline after commit."""

    message_ids: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    statuses: int = 0


def preview_of(kind: str, text: str) -> str:
    if text:
        return text.replace("\n", " ")[:PREVIEW_CHARS]
    return f"[{kind}]"


async def resolve_identity(
    session: AsyncSession,
    account: ChannelAccount,
    external_id: str,
    *,
    display_name: str | None = None,
    hints: Mapping[str, str] | None = None,
) -> Identity:
    """Find or create the identity (and its customer) for an external id on an account
    (identities.resolve_identity)."""
    return await session.run_sync(
        identities.resolve_identity, account, external_id, display_name=display_name, hints=hints
    )


async def conversation_for(
    session: AsyncSession, account: ChannelAccount, identity: Identity
) -> Conversation:
    """Get or create the conversation of an identity on an account."""
    conv = await session.scalar(
        select(Conversation).where(
            Conversation.account_id == account.id, Conversation.identity_id == identity.id
        )
    )
    if conv is not None:
        return conv
    await insert_ignore_returning_id(
        session,
        Conversation.__table__,  # type: ignore[arg-type]
        {
            "customer_id": identity.customer_id,
            "account_id": account.id,
            "identity_id": identity.id,
            "status": "open",
            "mode": "bot",
            "unread_count": 0,
            "last_preview": "",
            "created_at": utcnow(),
        },
        ("account_id", "identity_id"),
    )
    return (
        await session.execute(
            select(Conversation).where(
                Conversation.account_id == account.id, Conversation.identity_id == identity.id
            )
        )
    ).scalar_one()


async def record_inbound(
    session: AsyncSession,
    account: ChannelAccount,
    items: Iterable[InboundMessage | InboundEvent | StatusUpdate],
) -> RecordResult:
    """Store what an adapter parsed, idempotently by (account, provider_key).

    The caller commits and only then acknowledges the provider (DESIGN.md invariant 1).
    """
    result = RecordResult()
    for item in items:
        if isinstance(item, InboundMessage):
            msg_id = await _record_message(session, account, item)
            if msg_id is None:
                result.duplicates += 1
            else:
                result.message_ids.append(msg_id)
        elif isinstance(item, InboundEvent):
            event_id = await insert_ignore_returning_id(
                session,
                ChannelEvent.__table__,  # type: ignore[arg-type]
                {
                    "account_id": account.id,
                    "provider_key": item.provider_key,
                    "event_type": item.event_type,
                    "external_id": item.external_id,
                    "staff_external_id": item.staff_external_id,
                    "payload": dict(item.payload),
                    "raw": item.raw,
                    "occurred_at": item.occurred_at,
                    "created_at": utcnow(),
                },
                ("account_id", "provider_key"),
            )
            if event_id is None:
                result.duplicates += 1
            else:
                result.event_ids.append(event_id)
        else:
            if await apply_status(session, account.id, item):
                result.statuses += 1
    return result


async def _record_message(
    session: AsyncSession, account: ChannelAccount, item: InboundMessage
) -> int | None:
    # cheap pre-check: provider retries are the common duplicate and need no identity work
    exists = await session.scalar(
        select(Message.id).where(
            Message.account_id == account.id, Message.provider_key == item.provider_key
        )
    )
    if exists is not None:
        return None
    conv = await thread_conversation(session, account.id, item.thread_refs)
    if conv is None:
        identity = await resolve_identity(
            session,
            account,
            item.external_id,
            display_name=item.sender_name,
            hints=item.contact_hints,
        )
        conv = await conversation_for(session, account, identity)
    now = utcnow()
    inbound = item.direction == Direction.INBOUND
    msg_id = await insert_ignore_returning_id(
        session,
        Message.__table__,  # type: ignore[arg-type]
        {
            "conversation_id": conv.id,
            "account_id": account.id,
            "direction": item.direction.value,
            "kind": item.kind.value,
            "text": item.text,
            "payload": dict(item.payload),
            "raw": item.raw,
            "provider_key": item.provider_key,
            "provider_message_id": item.provider_message_id,
            "sender_type": (SenderType.CUSTOMER if inbound else SenderType.STAFF).value,
            "staff_external_id": item.staff_external_id,
            "status": MessageStatus.RECEIVED.value,
            "automated": item.automated,
            "occurred_at": item.occurred_at,
            "created_at": now,
        },
        ("account_id", "provider_key"),
    )
    if msg_id is None:
        return None
    values: dict[str, Any] = {
        "last_message_at": item.occurred_at,
        "last_preview": preview_of(item.kind.value, item.text),
    }
    if inbound and item.kind != MessageKind.EVENT:
        values["last_inbound_at"] = item.occurred_at
        values["unread_count"] = Conversation.unread_count + 1
        values["status"] = "open"
    await session.execute(update(Conversation).where(Conversation.id == conv.id).values(**values))
    await session.execute(
        update(Customer).where(Customer.id == conv.customer_id).values(last_contact_at=now)
    )
    return msg_id


async def thread_conversation(
    session: AsyncSession, account_id: int, refs: Sequence[str]
) -> Conversation | None:
    """The conversation of the nearest message in `refs` (identities.thread_conversation)."""
    return await session.run_sync(identities.thread_conversation, account_id, refs)


async def apply_status(session: AsyncSession, account_id: int, status: StatusUpdate) -> bool:
    """Apply a delivery receipt; never moves a message backwards. True if it changed."""
    message: Message | None = None
    if status.outbox_key:
        item = await session.scalar(
            select(OutboxItem).where(OutboxItem.idempotency_key == status.outbox_key)
        )
        if item is not None and item.message_id is not None:
            message = await session.get(Message, item.message_id)
    if message is None and status.provider_message_id:
        message = await session.scalar(
            select(Message).where(
                Message.account_id == account_id,
                Message.provider_message_id == status.provider_message_id,
            )
        )
    if message is None:
        log.info(
            "receipt for an unknown message: account=%s provider_id=%s",
            account_id,
            status.provider_message_id,
        )
        return False
    current = MessageStatus(message.status) if message.status in _STATUS_RANK else None
    if current is not None and _STATUS_RANK[current] >= _STATUS_RANK[status.status]:
        return False
    message.status = status.status.value
    message.status_at = status.occurred_at
    if status.error_code:
        message.error_code = status.error_code
    if status.reason:
        message.status_reason = status.reason[:500]
    return True


async def queue_outbound(
    session: AsyncSession,
    conversation: Conversation,
    *,
    text: str,
    purpose: Purpose,
    idempotency_key: str,
    kind: MessageKind = MessageKind.TEXT,
    payload: Mapping[str, Any] | None = None,
    sender_type: SenderType = SenderType.STAFF,
    sender_staff_id: int | None = None,
    recipient: str | None = None,
    not_before: datetime | None = None,
) -> Message | None:
    """Write an outbound message and its outbox row in the caller's transaction.

    Returns None when `idempotency_key` was already queued (the same decision twice).
    """
    if await session.scalar(
        select(OutboxItem.id).where(OutboxItem.idempotency_key == idempotency_key)
    ):
        return None
    if recipient is None:
        identity = await session.get(Identity, conversation.identity_id)
        assert identity is not None
        recipient = identity.external_id
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        account_id=conversation.account_id,
        direction=Direction.OUTBOUND.value,
        kind=kind.value,
        text=text,
        payload=dict(payload or {}),
        sender_type=sender_type.value,
        sender_staff_id=sender_staff_id,
        purpose=purpose.value,
        status=MessageStatus.PENDING.value,
        occurred_at=now,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    session.add(
        OutboxItem(
            idempotency_key=idempotency_key,
            account_id=conversation.account_id,
            message_id=message.id,
            recipient=recipient,
            purpose=purpose.value,
            payload={"kind": kind.value, "text": text, **(payload or {})},
            status="pending",
            next_attempt_at=not_before or now,
            created_at=now,
        )
    )
    conversation.last_message_at = now
    conversation.last_preview = preview_of(kind.value, text)
    if sender_type == SenderType.STAFF:
        conversation.unread_count = 0  # replying reads the conversation
    return message


async def queue_operation(
    session: AsyncSession,
    account_id: int,
    *,
    recipient: str,
    purpose: Purpose,
    idempotency_key: str,
    payload: Mapping[str, Any],
    not_before: datetime | None = None,
) -> OutboxItem | None:
    """Queue an outbound call that is not a conversation message (staff notification,
    welcome message, group-send task). None if the key was already queued."""
    if await session.scalar(
        select(OutboxItem.id).where(OutboxItem.idempotency_key == idempotency_key)
    ):
        return None
    item = OutboxItem(
        idempotency_key=idempotency_key,
        account_id=account_id,
        recipient=recipient,
        purpose=purpose.value,
        payload=dict(payload),
        status="pending",
        next_attempt_at=not_before or utcnow(),
        created_at=utcnow(),
    )
    session.add(item)
    return item


async def mark_read(session: AsyncSession, conversation_id: int) -> None:
    await session.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(unread_count=0)
    )


async def save_cursor(session: AsyncSession, account_id: int, name: str, value: str) -> None:
    """Move a pull cursor in the same transaction as the page it covers (invariant 2)."""
    cursor = await session.get(ChannelCursor, (account_id, name))
    if cursor is None:
        session.add(ChannelCursor(account_id=account_id, name=name, value=value))
    else:
        cursor.value = value
        cursor.updated_at = utcnow()


async def load_cursor(session: AsyncSession, account_id: int, name: str) -> str | None:
    cursor = await session.get(ChannelCursor, (account_id, name))
    return cursor.value if cursor is not None else None


async def audit(
    session: AsyncSession,
    action: str,
    *,
    actor_id: int | None,
    target_type: str | None = None,
    target_id: object = None,
    detail: Mapping[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            detail=dict(detail or {}),
            ip=ip,
        )
    )
