"""Moving frozen recipients into the outbox, and their outcomes back.

`queue_batch` runs in ONE transaction per batch: it checks do-not-contact (invariant 7),
frequency caps and reachability, picks the first usable channel in the broadcast's
order, writes the conversation message + outbox row (key "bc:<run>:<recipient>") and
marks the recipient queued. A crash before the commit leaves the rows pending; after it,
the outbox owns the send. Nothing is ever recounted: the rows are the truth.

Rate limits are paced here: each rate-limited account has a next free slot shared by all
queuers, rows are due one slot apart, and only rows due within the horizon are queued,
so pause, cancel and quiet hours act on a small outbox backlog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.consent import ANY_SCOPE, Suppression
from conversations.models import (
    ChannelAccount,
    Customer,
    Identity,
    Message,
    StaffUser,
)
from conversations.types import MessageStatus, Purpose

from .content import render_variant
from .links import sign_click
from .models import (
    AccountPacing,
    Broadcast,
    BroadcastLink,
    BroadcastRecipient,
    BroadcastRun,
    RecipientStatus,
    RunStatus,
    SkipReason,
)
from .outbox_writes import Send, write_sends
from .policy import AccountView, ChannelPolicy, CustomerView, PolicyRegistry
from .settings import BroadcastSettings
from .tasks import TaskChannels

log = logging.getLogger(__name__)

_LIVE_RECIPIENT = (RecipientStatus.QUEUED.value, RecipientStatus.SENT.value)
_COUNTED = (
    RecipientStatus.GROUPING.value,
    RecipientStatus.QUEUED.value,
    RecipientStatus.SENT.value,
    RecipientStatus.DELIVERED.value,
)


@dataclass(frozen=True)
class Choice:
    hop: int
    account: ChannelAccount
    view: AccountView
    policy: ChannelPolicy
    variant: Mapping[str, Any]
    address: str
    identity: Identity | None


@dataclass
class _Facts:
    """Everything one batch's decisions need, loaded set-wise in the batch's transaction."""

    accounts: dict[int, ChannelAccount]
    customers: dict[int, CustomerView]
    identities: dict[tuple[int, int], Identity]
    suppressed: set[tuple[str, str, str]]
    cap_counts: dict[int, int]
    links: dict[str, int]
    pace: dict[int, datetime] = field(default_factory=dict)


def account_view(row: ChannelAccount) -> AccountView:
    return AccountView(row.id, row.kind, row.name, dict(row.config))


def customer_view(row: Customer, owner_name: str | None) -> CustomerView:
    return CustomerView(
        row.id, row.display_name, row.phone, row.email, owner_name, dict(row.profile or {})
    )


async def load_customers(session: AsyncSession, ids: Iterable[int]) -> dict[int, CustomerView]:
    rows = await session.execute(
        select(Customer, StaffUser.display_name)
        .outerjoin(StaffUser, StaffUser.id == Customer.owner_id)
        .where(Customer.id.in_(list(ids)))
    )
    return {c.id: customer_view(c, owner) for c, owner in rows}


async def load_accounts(session: AsyncSession, ids: Iterable[int]) -> dict[int, ChannelAccount]:
    rows = await session.scalars(select(ChannelAccount).where(ChannelAccount.id.in_(list(ids))))
    return {a.id: a for a in rows}


async def load_identities(
    session: AsyncSession, customer_ids: Iterable[int], account_ids: Iterable[int]
) -> dict[tuple[int, int], Identity]:
    rows = await session.scalars(
        select(Identity)
        .where(
            Identity.customer_id.in_(list(customer_ids)),
            Identity.account_id.in_(list(account_ids)),
        )
        .order_by(Identity.id)
    )
    found: dict[tuple[int, int], Identity] = {}
    for ident in rows:
        found.setdefault((ident.customer_id, ident.account_id), ident)
    return found


class ChannelChooser:
    """Fallback over the broadcast's channel order (no identity, suppressed, no content)."""

    def __init__(self, broadcast: Broadcast, facts: _Facts, policies: PolicyRegistry) -> None:
        self.broadcast = broadcast
        self.facts = facts
        self.policies = policies

    def candidates(self, customer_id: int, start_hop: int = 0) -> Iterable[Choice]:
        customer = self.facts.customers.get(customer_id)
        if customer is None:
            return
        for hop, raw_id in enumerate(self.broadcast.channel_order):
            if hop < start_hop:
                continue
            account = self.facts.accounts.get(int(raw_id))
            if account is None or not account.enabled:
                continue
            policy = self.policies.for_kind(account.kind)
            if policy is None:
                continue
            variant = self.broadcast.content.get(policy.family)
            if not isinstance(variant, Mapping):
                continue
            identity = self.facts.identities.get((customer_id, account.id))
            address = policy.address(customer, identity.external_id if identity else None)
            if not address:
                continue
            yield Choice(hop, account, account_view(account), policy, variant, address, identity)

    def choose(self, customer_id: int, start_hop: int = 0) -> Choice | SkipReason:
        reason = SkipReason.UNREACHABLE
        if self.facts.customers.get(customer_id) is None:
            return SkipReason.MERGED
        for choice in self.candidates(customer_id, start_hop):
            scope = choice.policy.consent_scope(choice.view)
            family = choice.policy.family
            if (family, choice.address, scope) in self.facts.suppressed or (
                family,
                choice.address,
                ANY_SCOPE,
            ) in self.facts.suppressed:
                reason = SkipReason.SUPPRESSED
                continue
            return choice
        if reason == SkipReason.UNREACHABLE and not any(
            isinstance(self.broadcast.content.get(p.family), Mapping)
            for p in self._policies_in_order()
        ):
            return SkipReason.NO_CONTENT
        return reason

    def _policies_in_order(self) -> list[ChannelPolicy]:
        out = []
        for raw_id in self.broadcast.channel_order:
            account = self.facts.accounts.get(int(raw_id))
            policy = self.policies.for_kind(account.kind) if account else None
            if policy is not None:
                out.append(policy)
        return out


async def _load_facts(
    session: AsyncSession,
    broadcast: Broadcast,
    customer_ids: Sequence[int],
    policies: PolicyRegistry,
    settings: BroadcastSettings,
    now: datetime,
) -> _Facts:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and broadcast.purpose == "marketing":
        # serialise cap decisions per customer across concurrent runs
        await session.execute(
            select(Customer.id)
            .where(Customer.id.in_(customer_ids))
            .order_by(Customer.id)
            .with_for_update()
        )
    account_ids = [int(a) for a in broadcast.channel_order]
    accounts = await load_accounts(session, account_ids)
    customers = await load_customers(session, customer_ids)
    merged = await session.scalars(
        select(Customer.id).where(
            Customer.id.in_(customer_ids), Customer.merged_into_id.is_not(None)
        )
    )
    for cid in merged:
        customers.pop(cid, None)
    identities = await load_identities(session, customer_ids, account_ids)
    facts = _Facts(accounts, customers, identities, set(), {}, {})
    addresses: set[str] = set()
    chooser = ChannelChooser(broadcast, facts, policies)
    for cid in customer_ids:
        addresses.update(c.address for c in chooser.candidates(cid))
    if addresses:
        rows = await session.execute(
            select(Suppression.channel, Suppression.address, Suppression.scope).where(
                Suppression.address.in_(sorted(addresses))
            )
        )
        facts.suppressed = {(c, a, s) for c, a, s in rows}
    if broadcast.purpose == "marketing":
        cap = broadcast.frequency_cap or {}
        days = int(cap.get("period_days", settings.cap_period_days))
        counts = await session.execute(
            select(BroadcastRecipient.customer_id, func.count())
            .where(
                BroadcastRecipient.customer_id.in_(customer_ids),
                BroadcastRecipient.marketing.is_(True),
                BroadcastRecipient.status.in_(_COUNTED),
                BroadcastRecipient.queued_at >= now - timedelta(days=days),
            )
            .group_by(BroadcastRecipient.customer_id)
        )
        facts.cap_counts = {cid: int(n) for cid, n in counts if cid is not None}
    links = await session.execute(
        select(BroadcastLink.url, BroadcastLink.id).where(
            BroadcastLink.broadcast_id == broadcast.id
        )
    )
    facts.links = {url: lid for url, lid in links}
    paced = [a.id for a in accounts.values() if _rate(a)]
    if paced:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(AccountPacing)
            .values([{"account_id": a, "next_slot": now} for a in paced])
            .on_conflict_do_nothing(index_elements=["account_id"])
        )
        query = select(AccountPacing).where(AccountPacing.account_id.in_(paced))
        if dialect == "postgresql":
            query = query.with_for_update()
        facts.pace = {p.account_id: p.next_slot for p in await session.scalars(query)}
    return facts


def _rate(account: ChannelAccount) -> float:
    try:
        return float((account.config or {}).get("rate_per_second") or 0)
    except (TypeError, ValueError):
        return 0.0


def _cap_limit(broadcast: Broadcast, settings: BroadcastSettings) -> int | None:
    if broadcast.purpose != "marketing":
        return None
    cap = broadcast.frequency_cap or {}
    if cap.get("disabled"):
        return None
    return int(cap.get("max_per_customer", settings.cap_max_per_customer))


@dataclass
class BatchResult:
    queued: int = 0
    skipped: int = 0
    waiting_until: datetime | None = None  # the next row is not due before this time
    empty: bool = False  # no pending rows left


async def claim_run(
    session: AsyncSession, run_id: int, owner: str, now: datetime, lease: timedelta
) -> bool:
    """Hold the run for this queuer (a lease; the outbox key is the real guarantee)."""
    result = await session.execute(
        update(BroadcastRun)
        .where(
            BroadcastRun.id == run_id,
            BroadcastRun.status == RunStatus.SENDING.value,
            or_(
                BroadcastRun.lease_owner.is_(None),
                BroadcastRun.lease_owner == owner,
                BroadcastRun.lease_until < now,
            ),
        )
        .values(lease_owner=owner, lease_until=now + lease)
    )
    return bool(getattr(result, "rowcount", 0))


async def queue_batch(
    session: AsyncSession,
    run_id: int,
    *,
    owner: str,
    policies: PolicyRegistry,
    settings: BroadcastSettings,
    now: datetime,
    tasks: TaskChannels | None = None,
) -> BatchResult:
    """Queue the next batch of pending recipients of a sending run (one transaction).
    Recipients reached on a task channel only move to 'grouping' (broadcasts.tasks)."""
    result = BatchResult()
    if not await claim_run(session, run_id, owner, now, timedelta(seconds=settings.lease_seconds)):
        return result
    run = await session.get(BroadcastRun, run_id)
    assert run is not None
    broadcast = await session.get(Broadcast, run.broadcast_id)
    assert broadcast is not None
    rows = list(
        await session.scalars(
            select(BroadcastRecipient)
            .where(
                BroadcastRecipient.run_id == run_id,
                BroadcastRecipient.status == RecipientStatus.PENDING.value,
            )
            .order_by(BroadcastRecipient.id)
            .limit(settings.batch)
        )
    )
    if not rows:
        result.empty = True
        return result
    facts = await _load_facts(
        session, broadcast, [_customer(r) for r in rows], policies, settings, now
    )
    chooser = ChannelChooser(broadcast, facts, policies)
    limit = _cap_limit(broadcast, settings)
    horizon = now + timedelta(seconds=settings.queue_horizon_seconds)
    planned: list[tuple[BroadcastRecipient, Send]] = []
    for row in rows:
        if limit is not None and facts.cap_counts.get(_customer(row), 0) >= limit:
            _skip(row, SkipReason.FREQUENCY_CAP)
            result.skipped += 1
            continue
        choice = chooser.choose(_customer(row))
        if isinstance(choice, SkipReason):
            _skip(row, choice)
            result.skipped += 1
            continue
        if tasks is not None and tasks.for_kind(choice.account.kind) is not None:
            _group(row, choice, now)  # staff confirm the task: no pacing, no outbox row
            facts.cap_counts[_customer(row)] = facts.cap_counts.get(_customer(row), 0) + 1
            result.queued += 1
            continue
        slot = _slot(broadcast, choice, facts, now)
        if slot > horizon:
            result.waiting_until = slot
            break
        planned.append((row, _plan(run, broadcast, row, choice, facts, settings, slot, now, None)))
        facts.cap_counts[_customer(row)] = facts.cap_counts.get(_customer(row), 0) + 1
        result.queued += 1
    await _write(session, planned, now)
    for account_id, next_slot in facts.pace.items():
        await session.execute(
            update(AccountPacing)
            .where(AccountPacing.account_id == account_id)
            .values(next_slot=next_slot)
        )
    return result


def _customer(row: BroadcastRecipient) -> int:
    """Rows sent one by one always have a customer: group rows (客户群群发) are frozen
    straight into 'grouping' and never pass through queue_batch or a fallback."""
    assert row.customer_id is not None
    return row.customer_id


def _group(row: BroadcastRecipient, choice: Choice, now: datetime) -> None:
    row.status = RecipientStatus.GROUPING.value
    row.skip_reason = None
    row.account_id = choice.account.id
    row.address = choice.address
    row.hop = choice.hop
    row.queued_at = now


def _skip(row: BroadcastRecipient, reason: SkipReason) -> None:
    row.status = RecipientStatus.SKIPPED.value
    row.skip_reason = reason.value


def _slot(broadcast: Broadcast, choice: Choice, facts: _Facts, now: datetime) -> datetime:
    slot = max(now, facts.pace.get(choice.account.id, now))
    if broadcast.purpose == "marketing":
        window = choice.policy.marketing_window(choice.view)
        if window is not None:
            slot = window.next_allowed(slot)
    return slot


def recipient_key(run_id: int, recipient_id: int, fallback_hop: int | None = None) -> str:
    base = f"bc:{run_id}:{recipient_id}"
    return base if fallback_hop is None else f"{base}:{fallback_hop}"


def _plan(
    run: BroadcastRun,
    broadcast: Broadcast,
    row: BroadcastRecipient,
    choice: Choice,
    facts: _Facts,
    settings: BroadcastSettings,
    slot: datetime,
    now: datetime,
    fallback_hop: int | None,
) -> Send:
    """Decide the send for one recipient and mark the row queued (written by write_sends)."""
    marketing = broadcast.purpose == "marketing"
    customer = facts.customers[_customer(row)]

    def link_for(url: str) -> str | None:
        link_id = facts.links.get(url)
        if link_id is None or not settings.secret_key:
            return None
        return f"{settings.public_url}/r/{sign_click(settings.secret_key, link_id, row.id)}"

    rendered = render_variant(choice.variant, customer, link_for)
    text = str(rendered.get("text") or rendered.get("subject") or "")
    final = choice.policy.finalise(choice.view, text, marketing)
    kind, payload = choice.policy.payload(choice.view, rendered, final)
    payload.update(broadcast_id=broadcast.id, run_id=run.id, recipient_id=row.id)
    identity = choice.identity
    row.status = RecipientStatus.QUEUED.value
    row.skip_reason = None
    row.account_id = choice.account.id
    row.address = choice.address
    row.hop = choice.hop
    row.queued_at = now
    rate = _rate(choice.account)
    if rate:
        facts.pace[choice.account.id] = slot + timedelta(seconds=1 / rate)
    return Send(
        customer_id=_customer(row),
        account_id=choice.account.id,
        account_kind=choice.account.kind,
        address=choice.address,
        identity_id=identity.id if identity is not None else None,
        key=recipient_key(run.id, row.id, fallback_hop),
        kind=kind,
        text=final,
        payload=payload,
        purpose=Purpose.MARKETING if marketing else Purpose.REMINDER,
        not_before=slot,
        staff_id=broadcast.created_by,
    )


async def _write(
    session: AsyncSession, planned: Sequence[tuple[BroadcastRecipient, Send]], now: datetime
) -> None:
    await write_sends(session, [send for _row, send in planned], now)
    for row, send in planned:
        row.message_id = send.message_id


async def settle_run(
    session: AsyncSession,
    run_id: int,
    *,
    owner: str,
    policies: PolicyRegistry,
    settings: BroadcastSettings,
    now: datetime,
) -> int:
    """Carry send outcomes onto recipients; on failure fall back to the next channel.
    Returns how many recipients changed. Completes the run when nothing is left."""
    changed = 0
    msg_status = (
        select(Message.status).where(Message.id == BroadcastRecipient.message_id).scalar_subquery()
    )
    for new, olds, statuses in (
        (RecipientStatus.SENT, (RecipientStatus.QUEUED.value,), (MessageStatus.SENT.value,)),
        (
            RecipientStatus.DELIVERED,
            _LIVE_RECIPIENT,
            (MessageStatus.DELIVERED.value, MessageStatus.READ.value),
        ),
    ):
        res = await session.execute(
            update(BroadcastRecipient)
            .where(
                BroadcastRecipient.run_id == run_id,
                BroadcastRecipient.status.in_(olds),
                msg_status.in_(statuses),
            )
            .values(status=new.value)
            .execution_options(synchronize_session=False)
        )
        changed += int(getattr(res, "rowcount", 0) or 0)
    failed = (
        await session.execute(
            select(BroadcastRecipient, Message.status_reason)
            .join(Message, Message.id == BroadcastRecipient.message_id)
            .where(
                BroadcastRecipient.run_id == run_id,
                BroadcastRecipient.status.in_(_LIVE_RECIPIENT),
                Message.status == MessageStatus.FAILED.value,
            )
            .order_by(BroadcastRecipient.id)
            .limit(settings.batch)
        )
    ).all()
    if failed:
        changed += await _fall_back(session, run_id, failed, policies, settings, now)
    run = await session.get(BroadcastRun, run_id)
    if run is not None and run.status == RunStatus.SENDING.value:
        open_rows = await session.scalar(
            select(func.count())
            .select_from(BroadcastRecipient)
            .where(
                BroadcastRecipient.run_id == run_id,
                BroadcastRecipient.status.in_(
                    (
                        RecipientStatus.PENDING.value,
                        RecipientStatus.GROUPING.value,
                        RecipientStatus.QUEUED.value,
                    )
                ),
            )
        )
        if not open_rows:
            run.status = RunStatus.COMPLETED.value
            run.finished_at = now
            run.lease_owner = None
    return changed


async def _fall_back(
    session: AsyncSession,
    run_id: int,
    failed: Sequence[tuple[BroadcastRecipient, str | None]],
    policies: PolicyRegistry,
    settings: BroadcastSettings,
    now: datetime,
) -> int:
    run = await session.get(BroadcastRun, run_id)
    assert run is not None
    broadcast = await session.get(Broadcast, run.broadcast_id)
    assert broadcast is not None
    facts = await _load_facts(
        session, broadcast, [_customer(r) for r, _ in failed], policies, settings, now
    )
    chooser = ChannelChooser(broadcast, facts, policies)
    planned: list[tuple[BroadcastRecipient, Send]] = []
    for row, reason in failed:
        choice = (
            chooser.choose(_customer(row), row.hop + 1)
            if run.status == RunStatus.SENDING.value
            else SkipReason.UNREACHABLE
        )
        if isinstance(choice, SkipReason):
            row.status = RecipientStatus.FAILED.value
            row.error = (reason or "failed")[:500]
            continue
        slot = _slot(broadcast, choice, facts, now)
        row.error = (reason or "failed")[:500]
        planned.append(
            (row, _plan(run, broadcast, row, choice, facts, settings, slot, now, choice.hop))
        )
    await _write(session, planned, now)
    for account_id, next_slot in facts.pace.items():
        await session.execute(
            update(AccountPacing)
            .where(AccountPacing.account_id == account_id)
            .values(next_slot=next_slot)
        )
    return len(failed)
