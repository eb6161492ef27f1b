"""Channels where a broadcast becomes *tasks* that staff confirm, not one message per
recipient: WeCom 企业群发 (add_msg_template) is the only way to reach 客户联系
customers, and each salesperson sends the task to their own customers from the WeCom
client. The WeCom side implements `TaskChannel` (bot/wecom_tasks.py); this module only
knows recipient rows.

Lifecycle of a recipient on a task channel: pending → grouping (chosen by
`queue_batch`, no outbox row) → queued (its task exists: `create_run_tasks`, ONE
transaction for the whole run, so a crash leaves either no task and every row grouping,
or every task and every row queued) → sent / skipped(reason) / failed / cancelled as the
task's per-recipient results come back (`settle_tasks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import ChannelAccount

from .models import Broadcast, BroadcastRecipient, BroadcastRun, RecipientStatus, RunStatus


@dataclass(frozen=True)
class TaskRecipient:
    recipient_id: int
    customer_id: int | None  # None: a group row (客户群群发), `address` is its chat id
    address: str  # the channel's own id for the customer (WeCom external_userid)


@dataclass(frozen=True)
class TaskOutcome:
    """Where one recipient stands; `status` is a RecipientStatus value."""

    account_id: int
    address: str
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class TaskSummary:
    """One task as the broadcast page shows it."""

    account_id: int
    sender: str  # who confirms it (WeCom userid)
    status: str  # queued | created | finished | cancelled | failed
    confirmed: bool
    recipients: int
    sent: int
    error: str | None = None
    task_id: int = 0  # the channel's own task id, for `TaskControls`
    chat_type: str = "single"  # "group": the recipients are customer groups
    can_remind: bool = False
    can_cancel: bool = False


class TaskControls(Protocol):
    """Staff controls on a run's tasks (the broadcast page), called outside any
    transaction: they talk to the provider. Errors raise `TaskControlError`."""

    async def remind(self, run_id: int, task_id: int) -> None: ...

    async def cancel(self, run_id: int, task_id: int) -> None: ...

    async def cancel_run(self, run_id: int) -> int:
        """Cancel every task of a cancelled run that is not finished; returns how many."""
        ...


class TaskControlError(Exception):
    pass


class TaskChannel(Protocol):
    async def create_tasks(
        self,
        session: AsyncSession,
        *,
        run_id: int,
        account_id: int,
        content: Mapping[str, Any],
        recipients: Sequence[TaskRecipient],
    ) -> Sequence[TaskOutcome]:
        """Create the run's tasks for these recipients in the caller's transaction (the
        same call twice creates nothing new); outcomes for recipients it can already
        settle (e.g. not a contact of anyone)."""
        ...

    async def outcomes(self, session: AsyncSession, run_id: int) -> Sequence[TaskOutcome]:
        """The recipients' current state, as recorded by the channel's task polling."""
        ...

    async def summaries(self, session: AsyncSession, run_id: int) -> Sequence[TaskSummary]: ...


class TaskChannels:
    """Account kind → task channel (wired in bot/runtime.py)."""

    def __init__(self, channels: Mapping[str, TaskChannel] | None = None) -> None:
        self._by_kind: dict[str, TaskChannel] = dict(channels or {})

    def register(self, kind: str, channel: TaskChannel) -> None:
        self._by_kind[kind] = channel

    def for_kind(self, kind: str) -> TaskChannel | None:
        return self._by_kind.get(kind)

    def kinds(self) -> frozenset[str]:
        return frozenset(self._by_kind)

    def __iter__(self) -> Any:
        return iter(self._by_kind.values())


async def _broadcast_of(session: AsyncSession, run_id: int) -> Broadcast:
    run = await session.get(BroadcastRun, run_id)
    assert run is not None
    broadcast = await session.get(Broadcast, run.broadcast_id)
    assert broadcast is not None
    return broadcast


async def create_run_tasks(session: AsyncSession, run_id: int, channels: TaskChannels) -> int:
    """Every grouping recipient of a sending run into its account's tasks (one
    transaction, called once no recipient is pending). Returns the rows moved."""
    run = await session.get(BroadcastRun, run_id)
    if run is None or run.status != RunStatus.SENDING.value:
        return 0
    rows = list(
        await session.scalars(
            select(BroadcastRecipient)
            .where(
                BroadcastRecipient.run_id == run_id,
                BroadcastRecipient.status == RecipientStatus.GROUPING.value,
            )
            .order_by(BroadcastRecipient.id)
        )
    )
    if not rows:
        return 0
    broadcast = await _broadcast_of(session, run_id)
    kinds = dict(
        (
            await session.execute(
                select(ChannelAccount.id, ChannelAccount.kind).where(
                    ChannelAccount.id.in_({r.account_id for r in rows})
                )
            )
        ).all()
    )
    by_account: dict[int, list[BroadcastRecipient]] = {}
    for row in rows:
        assert row.account_id is not None
        by_account.setdefault(row.account_id, []).append(row)
    for account_id, members in sorted(by_account.items()):
        channel = channels.for_kind(kinds.get(account_id, ""))
        if channel is None:
            for row in members:
                row.status = RecipientStatus.FAILED.value
                row.error = "no task channel for this account"
            continue
        variant = broadcast.content.get("wecom")
        settled = await channel.create_tasks(
            session,
            run_id=run_id,
            account_id=account_id,
            content=variant if isinstance(variant, Mapping) else {},
            recipients=[TaskRecipient(r.id, r.customer_id, r.address or "") for r in members],
        )
        early = {o.address: o for o in settled}
        for row in members:
            row.status = RecipientStatus.QUEUED.value
            found = early.get(row.address or "")
            if found is not None:
                _apply(row, found)
    return len(rows)


def _apply(row: BroadcastRecipient, outcome: TaskOutcome) -> bool:
    if row.status == outcome.status and row.skip_reason == (
        outcome.reason if outcome.status == RecipientStatus.SKIPPED.value else row.skip_reason
    ):
        return False
    row.status = outcome.status
    if outcome.status == RecipientStatus.SKIPPED.value:
        row.skip_reason = outcome.reason
    elif outcome.status == RecipientStatus.FAILED.value:
        row.error = (outcome.reason or "failed")[:500]
    return True


async def settle_tasks(session: AsyncSession, run_id: int, channels: TaskChannels) -> int:
    """Carry the tasks' per-recipient results onto queued recipients; rows changed."""
    outcomes: dict[tuple[int, str], TaskOutcome] = {}
    for channel in channels:
        for o in await channel.outcomes(session, run_id):
            outcomes[(o.account_id, o.address)] = o
    if not outcomes:
        return 0
    rows = await session.scalars(
        select(BroadcastRecipient).where(
            BroadcastRecipient.run_id == run_id,
            BroadcastRecipient.status == RecipientStatus.QUEUED.value,
            BroadcastRecipient.message_id.is_(None),
        )
    )
    changed = 0
    for row in rows:
        found = outcomes.get((row.account_id or 0, row.address or ""))
        if found is not None and found.status != RecipientStatus.QUEUED.value:
            changed += _apply(row, found)
    return changed


async def run_task_summaries(
    session: AsyncSession, run_id: int, channels: TaskChannels
) -> list[TaskSummary]:
    out: list[TaskSummary] = []
    for channel in channels:
        out.extend(await channel.summaries(session, run_id))
    return out
