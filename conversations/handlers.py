"""What a pipeline handler receives. Handlers live in the domain packages (autoreply,
tagging, consent …) and are registered in `bot/wiring.py`; they run in order inside ONE
transaction that also marks the message processed, so each is idempotent by construction
and its outbox rows commit with it (STYLE.md §4, §5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from .models import ChannelAccount, ChannelEvent, Conversation, Customer, Message
from .types import ChannelRules


@dataclass
class MessageContext:
    session: AsyncSession
    account: ChannelAccount
    rules: ChannelRules  # what this account kind may do (auto-reply? read-only? budgets)
    conversation: Conversation
    customer: Customer
    message: Message
    now: datetime
    # set by a handler that fully dealt with the message (opt-out, hand-off):
    # later reply-producing handlers must then stay quiet
    claimed_by: str | None = None
    notes: list[str] = field(default_factory=list)  # for the log line
    # shared by every context of one pipeline batch (one transaction): what each message
    # would load the same (enabled rules) is loaded once; outside the pipeline, per call.
    # Under BATCH_CONTEXTS the pipeline puts every context of the batch, in order.
    batch: dict[str, Any] = field(default_factory=dict)

    def claim(self, handler: str) -> None:
        if self.claimed_by is None:
            self.claimed_by = handler


@dataclass
class EventContext:
    session: AsyncSession
    account: ChannelAccount
    rules: ChannelRules
    event: ChannelEvent
    now: datetime


BATCH_CONTEXTS = "pipeline.contexts"  # key in MessageContext.batch
MessageHandler = Callable[[MessageContext], Awaitable[None]]
# after every message handler, once per batch, in the same transaction: set-based work
BatchHandler = Callable[[Sequence[MessageContext]], Awaitable[None]]
EventHandler = Callable[[EventContext], Awaitable[None]]
