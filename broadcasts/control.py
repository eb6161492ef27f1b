"""Named actions on broadcasts: create, submit (validate + schedule or ask approval),
approve, reject, pause, resume, cancel, preview, estimate and a test send to yourself.
Each takes the caller's session (one transaction) and leaves an audit entry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.access import Role
from conversations.actions import audit, queue_operation
from conversations.consent import ANY_SCOPE, Suppression
from conversations.models import ChannelAccount, Message, OutboxItem, StaffUser
from conversations.types import MessageStatus, Purpose

from .audience import AudienceRegistry, TaskAudience
from .content import render_variant, unknown_variables
from .models import (
    Broadcast,
    BroadcastRecipient,
    BroadcastRun,
    BroadcastStatus,
    RecipientStatus,
    RunStatus,
    SkipReason,
)
from .policy import Estimate, PolicyRegistry
from .schedule import Schedule, ScheduleError
from .sending import (
    ChannelChooser,
    _Facts,
    account_view,
    load_accounts,
    load_customers,
    load_identities,
)

APPROVERS = (Role.ADMIN, Role.MANAGER)
_OPEN_RUNS = (RunStatus.FREEZING.value, RunStatus.SENDING.value, RunStatus.PAUSED.value)


class BroadcastError(ValueError):
    """A request the marketer must change; `problems` are shown in the form."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Draft:
    name: str
    audience: Mapping[str, Any]
    content: Mapping[str, Any]
    channel_order: Sequence[int]
    schedule: Mapping[str, Any] = field(default_factory=lambda: {"kind": "now"})
    timezone: str = "Asia/Shanghai"
    purpose: str = "marketing"
    frequency_cap: Mapping[str, Any] = field(default_factory=dict)
    requires_approval: bool = False


async def create_broadcast(
    session: AsyncSession, draft: Draft, *, actor_id: int | None
) -> Broadcast:
    broadcast = Broadcast(
        name=draft.name[:200],
        purpose=draft.purpose,
        status=BroadcastStatus.DRAFT.value,
        audience=dict(draft.audience),
        content={k: dict(v) for k, v in draft.content.items()},
        channel_order=[int(a) for a in draft.channel_order],
        schedule=dict(draft.schedule),
        timezone=draft.timezone,
        frequency_cap=dict(draft.frequency_cap),
        requires_approval=draft.requires_approval,
        created_by=actor_id,
    )
    session.add(broadcast)
    await session.flush()
    await audit(
        session,
        "broadcast_created",
        actor_id=actor_id,
        target_type="broadcast",
        target_id=broadcast.id,
    )
    return broadcast


async def validate(
    session: AsyncSession,
    broadcast: Broadcast,
    policies: PolicyRegistry,
    audiences: AudienceRegistry,
) -> list[str]:
    """Everything that would make the send fail or mislead, found before scheduling."""
    problems: list[str] = []
    try:
        Schedule.parse(broadcast.schedule, broadcast.timezone)
    except ScheduleError as exc:
        problems.append(str(exc))
    if str(broadcast.audience.get("kind")) not in audiences.kinds():
        problems.append(f"unknown audience kind {broadcast.audience.get('kind')!r}")
    if not broadcast.channel_order:
        problems.append("choose at least one channel")
    accounts = await load_accounts(session, [int(a) for a in broadcast.channel_order])
    marketing = broadcast.purpose == "marketing"
    for raw_id in broadcast.channel_order:
        account = accounts.get(int(raw_id))
        if account is None:
            problems.append(f"channel account {raw_id} does not exist")
            continue
        policy = policies.for_kind(account.kind)
        if policy is None:
            problems.append(f"{account.name}: broadcasts cannot use {account.kind}")
            continue
        variant = broadcast.content.get(policy.family)
        if not isinstance(variant, Mapping):
            problems.append(f"{account.name}: no {policy.family} content")
            continue
        problems.extend(policy.validate(account_view(account), variant, marketing))
        for key in ("text", "subject", "html"):
            for name in unknown_variables(str(variant.get(key, ""))):
                problems.append(f"{policy.family}.{key}: unknown variable {{{name}}}")
    return list(dict.fromkeys(problems))


async def submit(
    session: AsyncSession,
    broadcast: Broadcast,
    *,
    actor_id: int | None,
    policies: PolicyRegistry,
    audiences: AudienceRegistry,
    now: datetime,
) -> Broadcast:
    """Confirm a draft: schedule it, or hand it to a manager when approval is required."""
    if broadcast.status != BroadcastStatus.DRAFT.value:
        raise BroadcastError([f"only a draft can be submitted (this one is {broadcast.status})"])
    problems = await validate(session, broadcast, policies, audiences)
    if problems:
        raise BroadcastError(problems)
    if broadcast.requires_approval:
        broadcast.status = BroadcastStatus.PENDING_APPROVAL.value
    else:
        _schedule(broadcast, now)
    await audit(
        session,
        "broadcast_submitted",
        actor_id=actor_id,
        target_type="broadcast",
        target_id=broadcast.id,
        detail={"status": broadcast.status},
    )
    return broadcast


def _schedule(broadcast: Broadcast, now: datetime) -> None:
    first = Schedule.parse(broadcast.schedule, broadcast.timezone).first_fire(now)
    broadcast.next_fire_at = first
    broadcast.status = (
        BroadcastStatus.SCHEDULED.value if first is not None else BroadcastStatus.FINISHED.value
    )


async def approve(
    session: AsyncSession, broadcast: Broadcast, *, approver: StaffUser, now: datetime
) -> Broadcast:
    """A manager (or admin) approves; the author cannot approve their own broadcast."""
    if broadcast.status != BroadcastStatus.PENDING_APPROVAL.value:
        raise BroadcastError(["this broadcast is not waiting for approval"])
    if Role(approver.role) not in APPROVERS:
        raise PermissionError("only a manager or an admin may approve broadcasts")
    if approver.id == broadcast.created_by and Role(approver.role) != Role.ADMIN:
        raise PermissionError("a broadcast needs someone other than its author to approve it")
    broadcast.approved_by = approver.id
    broadcast.approved_at = now
    _schedule(broadcast, now)
    await audit(
        session,
        "broadcast_approved",
        actor_id=approver.id,
        target_type="broadcast",
        target_id=broadcast.id,
    )
    return broadcast


async def reject(
    session: AsyncSession, broadcast: Broadcast, *, approver: StaffUser, note: str = ""
) -> Broadcast:
    if broadcast.status != BroadcastStatus.PENDING_APPROVAL.value:
        raise BroadcastError(["this broadcast is not waiting for approval"])
    if Role(approver.role) not in APPROVERS:
        raise PermissionError("only a manager or an admin may reject broadcasts")
    broadcast.status = BroadcastStatus.DRAFT.value
    await audit(
        session,
        "broadcast_rejected",
        actor_id=approver.id,
        target_type="broadcast",
        target_id=broadcast.id,
        detail={"note": note[:500]},
    )
    return broadcast


async def _queued_unsent(session: AsyncSession, run_id: int) -> Any:
    return select(BroadcastRecipient.message_id).where(
        BroadcastRecipient.run_id == run_id,
        BroadcastRecipient.status == RecipientStatus.QUEUED.value,
    )


# a parked outbox row: pending but not due until the run is resumed
PARKED_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)


async def pause_run(session: AsyncSession, run: BroadcastRun, *, actor_id: int | None) -> None:
    """Stop queuing and hold the rows already queued but not yet claimed by a sender."""
    if run.status not in (RunStatus.SENDING.value, RunStatus.FREEZING.value):
        raise BroadcastError([f"a {run.status} run cannot be paused"])
    run.status = RunStatus.PAUSED.value
    await session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.status == "pending",
            OutboxItem.message_id.in_(await _queued_unsent(session, run.id)),
        )
        .values(next_attempt_at=PARKED_UNTIL)
        .execution_options(synchronize_session=False)
    )
    await audit(
        session,
        "broadcast_paused",
        actor_id=actor_id,
        target_type="broadcast_run",
        target_id=run.id,
    )


async def resume_run(
    session: AsyncSession, run: BroadcastRun, *, actor_id: int | None, now: datetime
) -> None:
    if run.status != RunStatus.PAUSED.value:
        raise BroadcastError(["only a paused run can be resumed"])
    run.status = RunStatus.SENDING.value if run.frozen_at else RunStatus.FREEZING.value
    await session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.status == "pending",
            OutboxItem.next_attempt_at >= PARKED_UNTIL,
            OutboxItem.message_id.in_(await _queued_unsent(session, run.id)),
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    await audit(
        session,
        "broadcast_resumed",
        actor_id=actor_id,
        target_type="broadcast_run",
        target_id=run.id,
    )


async def cancel_run(
    session: AsyncSession, run: BroadcastRun, *, actor_id: int | None, now: datetime
) -> int:
    """Cancel a run: pending recipients and outbox rows not yet claimed by a sender are
    cancelled; rows already being sent finish. Returns how many outbox rows stopped."""
    if run.status not in _OPEN_RUNS:
        raise BroadcastError([f"a {run.status} run cannot be cancelled"])
    run.status = RunStatus.CANCELLED.value
    run.finished_at = now
    # a compare-and-set against the dispatcher's claim (pending → sending): one wins
    stopped = (
        (
            await session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.status == "pending",
                    OutboxItem.message_id.in_(await _queued_unsent(session, run.id)),
                )
                .values(status="cancelled", last_error="broadcast cancelled")
                .returning(OutboxItem.message_id)
                .execution_options(synchronize_session=False)
            )
        )
        .scalars()
        .all()
    )
    message_ids = [m for m in stopped if m is not None]
    if message_ids:
        await session.execute(
            update(Message)
            .where(Message.id.in_(message_ids))
            .values(status=MessageStatus.CANCELLED.value, status_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(BroadcastRecipient)
            .where(
                BroadcastRecipient.run_id == run.id, BroadcastRecipient.message_id.in_(message_ids)
            )
            .values(status=RecipientStatus.CANCELLED.value)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        update(BroadcastRecipient)
        .where(
            BroadcastRecipient.run_id == run.id,
            BroadcastRecipient.status.in_(
                (RecipientStatus.PENDING.value, RecipientStatus.GROUPING.value)
            ),
        )
        .values(status=RecipientStatus.CANCELLED.value)
        .execution_options(synchronize_session=False)
    )
    await audit(
        session,
        "broadcast_cancelled",
        actor_id=actor_id,
        target_type="broadcast_run",
        target_id=run.id,
        detail={"outbox_stopped": len(message_ids)},
    )
    return len(message_ids)


async def cancel_broadcast(
    session: AsyncSession, broadcast: Broadcast, *, actor_id: int | None, now: datetime
) -> None:
    """Stop future fires and cancel every open run."""
    broadcast.status = BroadcastStatus.CANCELLED.value
    broadcast.next_fire_at = None
    runs = await session.scalars(
        select(BroadcastRun).where(
            BroadcastRun.broadcast_id == broadcast.id, BroadcastRun.status.in_(_OPEN_RUNS)
        )
    )
    for run in runs.all():
        await cancel_run(session, run, actor_id=actor_id, now=now)


# ---- preview, estimate, test send


@dataclass(frozen=True)
class PreviewItem:
    account_id: int
    account_name: str
    kind: str
    family: str
    text: str  # as the customer will see it
    subject: str
    estimate: Estimate
    suppressed: bool


async def preview(
    session: AsyncSession,
    broadcast: Broadcast,
    customer_id: int,
    policies: PolicyRegistry,
) -> list[PreviewItem]:
    """The message each channel in the order would carry for a real customer."""
    account_ids = [int(a) for a in broadcast.channel_order]
    facts = _Facts(
        accounts=await load_accounts(session, account_ids),
        customers=await load_customers(session, [customer_id]),
        identities=await load_identities(session, [customer_id], account_ids),
        suppressed=set(),
        cap_counts={},
        links={},
    )
    marketing = broadcast.purpose == "marketing"
    out: list[PreviewItem] = []
    for choice in ChannelChooser(broadcast, facts, policies).candidates(customer_id):
        rendered = render_variant(choice.variant, facts.customers[customer_id])
        text = choice.policy.finalise(
            choice.view, str(rendered.get("text") or rendered.get("html") or ""), marketing
        )
        scope = choice.policy.consent_scope(choice.view)
        suppressed = await session.scalar(
            select(Suppression.id)
            .where(
                Suppression.channel == choice.policy.family,
                Suppression.address == choice.address,
                Suppression.scope.in_((scope, ANY_SCOPE)),
            )
            .limit(1)
        )
        out.append(
            PreviewItem(
                choice.account.id,
                choice.account.name,
                choice.account.kind,
                choice.policy.family,
                text,
                str(rendered.get("subject", "")),
                choice.policy.estimate(choice.view, text),
                suppressed is not None,
            )
        )
    return out


@dataclass
class EstimateReport:
    recipients: int = 0
    by_account: dict[int, int] = field(default_factory=dict)
    unreachable: int = 0
    suppressed: int = 0
    sms_segments: int = 0
    cost: float = 0.0
    currency: str = "CNY"


async def estimate(
    session: AsyncSession,
    broadcast: Broadcast,
    policies: PolicyRegistry,
    audiences: AudienceRegistry,
    now: datetime,
) -> EstimateReport:
    """Recipients, channel split, SMS segments and cost if the audience were frozen now
    (frequency caps are applied at send time and are not subtracted here)."""
    report = EstimateReport()
    source = audiences.source(broadcast.audience, now, broadcast.timezone)
    if isinstance(source, TaskAudience):  # customer groups: one row per group, no cost
        for target in await source.targets(session):
            report.recipients += 1
            report.by_account[target.account_id] = report.by_account.get(target.account_id, 0) + 1
        return report
    account_ids = [int(a) for a in broadcast.channel_order]
    accounts = await load_accounts(session, account_ids)
    marketing = broadcast.purpose == "marketing"
    seen: set[int] = set()
    async for batch in source.batches(session):
        ids = [c for c in dict.fromkeys(batch) if c not in seen]
        seen.update(ids)
        facts = _Facts(
            accounts,
            await load_customers(session, ids),
            await load_identities(session, ids, account_ids),
            set(),
            {},
            {},
        )
        chooser = ChannelChooser(broadcast, facts, policies)
        addresses = {c.address for cid in ids for c in chooser.candidates(cid)}
        if addresses:
            rows = await session.execute(
                select(Suppression.channel, Suppression.address, Suppression.scope).where(
                    Suppression.address.in_(sorted(addresses))
                )
            )
            facts.suppressed = {(c, a, s) for c, a, s in rows}
        for cid in ids:
            report.recipients += 1
            choice = chooser.choose(cid)
            if isinstance(choice, SkipReason):
                if choice == SkipReason.SUPPRESSED:
                    report.suppressed += 1
                else:
                    report.unreachable += 1
                continue
            report.by_account[choice.account.id] = report.by_account.get(choice.account.id, 0) + 1
            rendered = render_variant(choice.variant, facts.customers[cid])
            text = choice.policy.finalise(choice.view, str(rendered.get("text") or ""), marketing)
            cost = choice.policy.estimate(choice.view, text)
            if choice.policy.family == "sms":
                report.sms_segments += cost.segments
            report.cost += cost.cost
            report.currency = cost.currency
    report.cost = round(report.cost, 2)
    return report


async def send_test_message(
    session: AsyncSession,
    broadcast: Broadcast,
    *,
    actor: StaffUser,
    account_id: int,
    address: str,
    sample_customer_id: int,
    policies: PolicyRegistry,
) -> OutboxItem:
    """Send the message as `sample_customer_id` would get it to the marketer's own address."""
    account = await session.get(ChannelAccount, account_id)
    if account is None or account.id not in [int(a) for a in broadcast.channel_order]:
        raise BroadcastError(["choose one of this broadcast's channels for the test"])
    policy = policies.for_kind(account.kind)
    variant = broadcast.content.get(policy.family) if policy else None
    if policy is None or not isinstance(variant, Mapping):
        raise BroadcastError([f"no content for {account.kind}"])
    customers = await load_customers(session, [sample_customer_id])
    if sample_customer_id not in customers:
        raise BroadcastError(["the sample customer does not exist"])
    view = account_view(account)
    rendered = render_variant(variant, customers[sample_customer_id])
    text = policy.finalise(view, str(rendered.get("text") or ""), broadcast.purpose == "marketing")
    kind, payload = policy.payload(view, rendered, text)
    item = await queue_operation(
        session,
        account.id,
        recipient=address,
        purpose=Purpose.NOTIFICATION,  # to staff: no opt-out, caps or quiet hours
        idempotency_key=f"bctest:{broadcast.id}:{uuid.uuid4().hex[:16]}",
        payload={"kind": kind.value, **payload, "test": True},
    )
    assert item is not None
    await audit(
        session,
        "broadcast_test_sent",
        actor_id=actor.id,
        target_type="broadcast",
        target_id=broadcast.id,
        detail={"account_id": account.id, "to": address[:64]},
    )
    return item


async def open_runs(session: AsyncSession) -> list[int]:
    rows = await session.scalars(
        select(BroadcastRun.id)
        .where(BroadcastRun.status.in_((RunStatus.FREEZING.value, RunStatus.SENDING.value)))
        .order_by(BroadcastRun.id)
    )
    return list(rows)


async def recipients_count(session: AsyncSession, run_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(BroadcastRecipient)
            .where(BroadcastRecipient.run_id == run_id)
        )
        or 0
    )
