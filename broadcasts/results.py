"""What a run achieved: counts for the progress bar, replies and opt-outs attributed to
it, link clicks, and the per-recipient export (CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.consent import ConsentEvent
from conversations.models import ChannelAccount, Conversation, Customer, Message

from .models import BroadcastClick, BroadcastRecipient, BroadcastRun

# recipient row + its message's status → the outcome shown to marketers
_OUTCOME = {
    "pending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "failed": "failed",
    "cancelled": "cancelled",
}


def outcome(recipient_status: str, message_status: str | None) -> str:
    if recipient_status in ("pending", "skipped", "cancelled") or message_status is None:
        return recipient_status
    if recipient_status == "failed":
        return "failed"
    return _OUTCOME.get(message_status, recipient_status)


@dataclass
class Progress:
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # pending/queued/sent/delivered/…
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    replied: int = 0
    opted_out: int = 0
    clicks: int = 0
    clickers: int = 0

    @property
    def done(self) -> int:
        waiting = ("pending", "grouping", "queued")
        return self.total - sum(self.counts.get(k, 0) for k in waiting)

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)


async def progress(session: AsyncSession, run_id: int, reply_window: timedelta) -> Progress:
    run = await session.get(BroadcastRun, run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    report = Progress(total=run.total)
    rows = await session.execute(
        select(BroadcastRecipient.status, Message.status, func.count())
        .outerjoin(Message, Message.id == BroadcastRecipient.message_id)
        .where(BroadcastRecipient.run_id == run_id)
        .group_by(BroadcastRecipient.status, Message.status)
    )
    for r_status, m_status, n in rows:
        key = outcome(r_status, m_status)
        report.counts[key] = report.counts.get(key, 0) + int(n)
    reasons = await session.execute(
        select(BroadcastRecipient.skip_reason, func.count())
        .where(BroadcastRecipient.run_id == run_id, BroadcastRecipient.status == "skipped")
        .group_by(BroadcastRecipient.skip_reason)
    )
    report.skipped_by_reason = {str(r): int(n) for r, n in reasons}
    report.replied = await _replied(session, run_id, reply_window)
    report.opted_out = await _opted_out(session, run_id, reply_window)
    clicks = await session.execute(
        select(func.count(), func.count(distinct(BroadcastClick.recipient_id)))
        .join(BroadcastRecipient, BroadcastRecipient.id == BroadcastClick.recipient_id)
        .where(BroadcastRecipient.run_id == run_id)
    )
    report.clicks, report.clickers = (int(v) for v in clicks.one())
    return report


async def _replied(session: AsyncSession, run_id: int, window: timedelta) -> int:
    """Recipients who wrote to us on any channel within `window` after we queued theirs."""
    # first reply per recipient in SQL; the window test in Python (date arithmetic in
    # SQL differs between SQLite and PostgreSQL)
    rows = await session.execute(
        select(BroadcastRecipient.id, BroadcastRecipient.queued_at, func.min(Message.occurred_at))
        .join(Conversation, Conversation.customer_id == BroadcastRecipient.customer_id)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(
            BroadcastRecipient.run_id == run_id,
            BroadcastRecipient.queued_at.is_not(None),
            Message.direction == "in",
            Message.occurred_at >= BroadcastRecipient.queued_at,
        )
        .group_by(BroadcastRecipient.id, BroadcastRecipient.queued_at)
    )
    return sum(
        1
        for _rid, queued, first in rows
        if queued is not None and first is not None and first - queued < window
    )


async def _opted_out(session: AsyncSession, run_id: int, window: timedelta) -> int:
    rows = await session.execute(
        select(BroadcastRecipient.id, BroadcastRecipient.queued_at, func.min(ConsentEvent.at))
        .join(ConsentEvent, ConsentEvent.address == BroadcastRecipient.address)
        .where(
            BroadcastRecipient.run_id == run_id,
            BroadcastRecipient.queued_at.is_not(None),
            ConsentEvent.action == "opt_out",
            ConsentEvent.at >= BroadcastRecipient.queued_at,
        )
        .group_by(BroadcastRecipient.id, BroadcastRecipient.queued_at)
    )
    return sum(
        1
        for _rid, queued, first in rows
        if queued is not None and first is not None and first - queued < window
    )


EXPORT_COLUMNS = (
    "recipient_id",
    "customer_id",
    "customer_name",
    "channel",
    "address",
    "outcome",
    "skip_reason",
    "error",
    "queued_at",
    "clicks",
)


async def export_csv(session: AsyncSession, run_id: int, chunk: int = 2000) -> AsyncIterator[str]:
    """The per-recipient results as CSV text chunks (UTF-8 with BOM for Excel)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow(EXPORT_COLUMNS)
    clicks = (
        select(func.count())
        .where(BroadcastClick.recipient_id == BroadcastRecipient.id)
        .correlate(BroadcastRecipient)
        .scalar_subquery()
    )
    last_id = 0
    while True:
        rows = (
            await session.execute(
                select(
                    BroadcastRecipient,
                    Customer.display_name,
                    ChannelAccount.name,
                    Message.status,
                    Message.status_reason,
                    clicks,
                )
                # group rows (客户群群发) have no customer: the address is the group
                .outerjoin(Customer, Customer.id == BroadcastRecipient.customer_id)
                .outerjoin(ChannelAccount, ChannelAccount.id == BroadcastRecipient.account_id)
                .outerjoin(Message, Message.id == BroadcastRecipient.message_id)
                .where(BroadcastRecipient.run_id == run_id, BroadcastRecipient.id > last_id)
                .order_by(BroadcastRecipient.id)
                .limit(chunk)
            )
        ).all()
        if not rows:
            break
        for r, name, account, m_status, m_reason, n_clicks in rows:
            writer.writerow(
                (
                    r.id,
                    r.customer_id or "",
                    name or "",
                    account or "",
                    r.address or "",
                    outcome(r.status, m_status),
                    r.skip_reason or "",
                    r.error or m_reason or "",
                    r.queued_at.isoformat() if r.queued_at else "",
                    n_clicks,
                )
            )
            last_id = r.id
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    tail = buf.getvalue()
    if tail:
        yield tail
