"""The outbox dispatcher: claims due rows, sends them through their account's adapter,
and records the outcome (DESIGN.md invariant 3).

- Claiming is one compare-and-set UPDATE … RETURNING over a batch of due rows (status,
  lease), so N dispatchers never send one row twice at once; on PostgreSQL the candidate
  scan inside it uses FOR UPDATE SKIP LOCKED.
- A lease that expires while 'sending' means the sender died mid-call: the outcome is
  unknown, so the row is reconciled (adapter.reconcile) before any new attempt. A row
  whose lease ran out while it waited for the rate gate is handed back unsent.
- RETRY backs off exponentially with jitter, honouring the provider's retry_after.
- Results are group-committed: sends finishing while one result transaction commits are
  recorded together in the next one (a few statements per batch, not per row), and
  `run` claims the next rows while earlier ones still wait for the rate gate, so a paced
  account never idles between batches (issue 8: ≥ 0.95·R).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Table, and_, bindparam, case, func, literal, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from conversations.db import Database, utcnow
from conversations.models import Message, OutboxItem
from conversations.types import (
    MessageKind,
    MessageStatus,
    Outbound,
    Purpose,
    SendOutcome,
    SendResult,
)

from .accounts import AccountDirectory
from .log_context import bind
from .metrics import SEND_SECONDS, record_send

log = logging.getLogger(__name__)

_RANK = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4, "cancelled": 4}
# a row is only sent while this much of its lease is left (the send itself must fit)
LEASE_MARGIN = 0.25


@runtime_checkable
class ReconcilingAdapter(Protocol):
    async def reconcile(self, message: Outbound) -> SendResult | None:
        """After an unknown outcome: what happened to `message.key`? None = still unknown."""
        ...


StatusListener = Callable[[int, int | None, str], Awaitable[None]]  # outbox id, message id, status
# awaited before each first-time send: per-account rate limits (broadcasts.throttle)
SendGate = Callable[[int, str], Awaitable[None]]  # account id, purpose


def backoff(attempt: int, base: float = 2.0, cap: float = 900.0) -> float:
    """Exponential backoff with full jitter (seconds)."""
    return random.uniform(base / 2, min(cap, base * 2 ** (attempt - 1)))


_OUTBOX: Table = OutboxItem.__table__  # type: ignore[assignment]  # declarative tables are Tables
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]
# the row's columns as the claim returns them (no ORM objects on the hot path)
_CLAIM_COLUMNS = (
    "id",
    "idempotency_key",
    "account_id",
    "message_id",
    "recipient",
    "purpose",
    "payload",
    "status",
    "attempts",
    "max_attempts",
    "next_attempt_at",
    "lease_until",
    "provider_message_id",
    "last_error_code",
    "last_error",
    "sent_at",
)
# what recording a result may change; every row of a bulk UPDATE sets all of them
_RESULT_COLUMNS = (
    "status",
    "attempts",
    "next_attempt_at",
    "provider_message_id",
    "last_error_code",
    "last_error",
    "sent_at",
)


@dataclass
class ClaimedItem:
    """An outbox row this dispatcher holds the lease of."""

    id: int
    idempotency_key: str
    account_id: int
    message_id: int | None
    recipient: str
    purpose: str
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    provider_message_id: str | None
    last_error_code: str | None
    last_error: str | None
    sent_at: datetime | None
    context: dict[str, Any] = field(default_factory=dict)  # reply_to for threading channels

    def result_values(
        self, result: SendResult, now: datetime
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(outbox columns, message columns) that record `result`; message columns empty
        when the message's status does not change."""
        # waiting for our own rate limit is not a failed attempt
        attempts = self.attempts + (0 if result.error_code == "rate_limited" else 1)
        values: dict[str, Any] = {c: getattr(self, c) for c in _RESULT_COLUMNS}
        values["attempts"] = attempts
        msg_values: dict[str, Any] = {}
        if result.outcome == SendOutcome.SENT:
            values.update(
                status="sent",
                sent_at=now,
                provider_message_id=result.provider_message_id,
                last_error=None,
                last_error_code=None,
            )
            msg_values.update(
                status=(result.status or MessageStatus.SENT).value,
                provider_message_id=result.provider_message_id,
                status_at=now,
            )
        elif result.outcome == SendOutcome.FAILED or attempts >= self.max_attempts:
            reason = result.reason or "failed"
            if result.outcome != SendOutcome.FAILED:
                reason = f"gave up after {attempts} attempts: {reason}"
            values.update(
                status="failed", last_error=reason[:500], last_error_code=result.error_code
            )
            msg_values.update(
                status=MessageStatus.FAILED.value,
                error_code=result.error_code,
                status_reason=reason[:500],
                status_at=now,
            )
        else:
            delay = backoff(attempts)
            if result.retry_after is not None:
                delay = max(delay, result.retry_after.total_seconds())
            status = "unknown" if result.outcome == SendOutcome.UNKNOWN else "pending"
            values.update(
                status=status,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=(result.reason or "")[:500],
                last_error_code="unknown" if status == "unknown" else result.error_code,
            )
        return values, msg_values


@dataclass
class _Recorded:
    item: ClaimedItem
    result: SendResult
    future: asyncio.Future[str] = field(repr=False)


def _rank_of(status: ColumnElement[str]) -> ColumnElement[int]:
    return case(*((status == name, rank) for name, rank in _RANK.items()), else_=0)


class OutboxDispatcher:
    def __init__(
        self,
        db: Database,
        accounts: AccountDirectory,
        *,
        lease_seconds: float = 60.0,
        batch: int = 50,
        concurrency: int = 16,
        idle_poll: float = 0.5,
        listeners: Sequence[StatusListener] = (),
        gates: Sequence[SendGate] = (),
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.concurrency = concurrency
        self.idle_poll = idle_poll
        self.owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.listeners = list(listeners)
        self.gates = list(gates)
        self._wake = asyncio.Event()
        self._sending = asyncio.Semaphore(concurrency)
        self._results: list[_Recorded] = []
        self._recorder: asyncio.Task[None] | None = None
        self._gate_locks: dict[int, asyncio.Lock] = {}

    def wake(self) -> None:
        """Something was queued in this process: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until `stop`; in-flight rows are finished before returning.

        The next rows are claimed once half of the claimed ones are done, so rows
        waiting for a rate gate always have successors queued behind them."""
        inflight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                room = self.batch - len(inflight)
                claimed: list[ClaimedItem] = []
                if room * 2 >= self.batch:
                    try:
                        claimed = await self._claim(room)
                    except Exception:  # noqa: BLE001  (the dispatcher must outlive a bad batch)
                        log.exception("outbox claim failed")
                    for item in claimed:
                        task = asyncio.get_running_loop().create_task(self._deliver(item))
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                if len(claimed) == room and room > 0:
                    continue  # more may be due right now
                self._wake.clear()
                waiters: set[asyncio.Future[Any]] = {
                    asyncio.ensure_future(self._wake.wait()),
                    asyncio.ensure_future(stop.wait()),
                    *inflight,
                }
                _done, _pending = await asyncio.wait(
                    waiters, timeout=self.idle_poll, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in waiters - inflight:
                    waiter.cancel()
        finally:
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)

    async def run_once(self) -> int:
        """Claim and send one batch; returns how many rows were handled."""
        claimed = await self._claim(self.batch)
        if claimed:
            await asyncio.gather(*(self._deliver(item) for item in claimed))
        return len(claimed)

    @staticmethod
    def _due(t: Any, now: datetime) -> ColumnElement[bool]:
        return or_(
            and_(t.status.in_(("pending", "unknown")), t.next_attempt_at <= now),
            and_(t.status == "sending", t.lease_until < now),
        )

    async def _claim(self, limit: int) -> list[ClaimedItem]:
        """Lease up to `limit` due rows in one statement."""
        now = utcnow()
        t = _OUTBOX.c
        due = self._due(t, now)
        # an alias, so the candidate scan is not correlated with the UPDATE's own table
        c = _OUTBOX.alias("candidate").c
        candidates = select(c.id).where(self._due(c, now)).order_by(c.next_attempt_at).limit(limit)
        if self.db.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        # a CTE runs once: PostgreSQL may re-run a LIMIT subquery per row it updates
        chosen = candidates.cte("chosen")
        # a lease that ran out while 'sending': the outcome is unknown → reconcile first
        expired = t.status == "sending"
        stmt = (
            update(_OUTBOX)
            .where(t.id.in_(select(chosen.c.id)), due)
            .values(
                status="sending",
                lease_until=now + self.lease,
                lease_owner=self.owner,
                last_error=case(
                    (expired, literal("outcome unknown: reconciling")), else_=t.last_error
                ),
                last_error_code=case((expired, literal("unknown")), else_=t.last_error_code),
            )
            .returning(*(t[c] for c in _CLAIM_COLUMNS))
        )
        async with self.db.transaction() as s:
            rows = (await s.execute(stmt)).all()
            items = [ClaimedItem(**dict(zip(_CLAIM_COLUMNS, row, strict=True))) for row in rows]
            items.sort(key=lambda i: (i.next_attempt_at, i.id))
            await self._load_context(s, items)
        return items

    async def _load_context(self, session: Any, items: Sequence[ClaimedItem]) -> None:
        """Channels that thread (email) reply to the customer's last message before ours:
        two queries for the whole batch."""
        by_message = {i.message_id: i for i in items if i.message_id is not None}
        if not by_message:
            return
        earlier = aliased(Message)
        last_in = (
            select(func.max(earlier.id))
            .where(
                earlier.conversation_id == Message.conversation_id,
                earlier.direction == "in",
                earlier.id < Message.id,
            )
            .scalar_subquery()
        )
        pairs = (
            await session.execute(
                select(Message.id, last_in).where(Message.id.in_(list(by_message)))
            )
        ).all()
        wanted = {int(prev): int(mid) for mid, prev in pairs if prev is not None}
        if not wanted:
            return
        for prev_id, provider_id, payload in (
            await session.execute(
                select(Message.id, Message.provider_message_id, Message.payload).where(
                    Message.id.in_(list(wanted))
                )
            )
        ).all():
            by_message[wanted[prev_id]].context["reply_to"] = {
                "provider_message_id": provider_id,
                "thread": (payload or {}).get("thread"),
            }

    def _outbound(self, item: ClaimedItem, ref: Any) -> Outbound:
        payload = dict(item.payload)
        return Outbound(
            key=item.idempotency_key,
            account=ref,
            recipient=item.recipient,
            kind=MessageKind(payload.get("kind", MessageKind.TEXT.value)),
            text=str(payload.get("text", "")),
            purpose=Purpose(item.purpose),
            payload=payload,
            context=dict(item.context),
            attempt=item.attempts + 1,
        )

    async def _deliver(self, item: ClaimedItem) -> None:
        with bind(outbox_id=item.id):
            try:
                await self._deliver_bound(item)
            except Exception:  # noqa: BLE001  (the lease runs out and the row is reclaimed)
                log.exception("outbox=%s not recorded", item.id)

    def _gate_lock(self, account_id: int) -> asyncio.Lock:
        lock = self._gate_locks.get(account_id)
        if lock is None:
            lock = self._gate_locks[account_id] = asyncio.Lock()
        return lock

    def _lease_left(self, item: ClaimedItem, margin: float | None = None) -> bool:
        if item.lease_until is None:
            return False
        if margin is None:
            margin = self.lease.total_seconds() * LEASE_MARGIN
        return (item.lease_until - utcnow()).total_seconds() > margin

    async def _deliver_bound(self, item: ClaimedItem) -> None:
        loaded = await self.accounts.by_id(item.account_id)
        if loaded is None:
            await self._record(
                item,
                SendResult(
                    SendOutcome.FAILED,
                    error_code="no_account",
                    reason="channel account missing or disabled",
                ),
            )
            return
        outbound = self._outbound(item, loaded.ref)
        adapter = loaded.adapter
        reconciling = item.last_error_code == "unknown"
        try:
            if reconciling and isinstance(adapter, ReconcilingAdapter):
                async with self._sending:
                    sent_at = time.perf_counter()
                    result = await adapter.reconcile(outbound)
                if result is None:
                    result = SendResult(
                        SendOutcome.UNKNOWN, error_code="unknown", reason="outcome still unknown"
                    )
            else:
                # one waiter per account at the gate: the rest queue here in order
                # instead of all polling the shared bucket at every token. The send slot
                # is taken BEFORE the gate: a grant that then waited for a slot would
                # reach the provider late and could put R+1 sends into its second.
                async with self._gate_lock(item.account_id):
                    await self._sending.acquire()
                    try:
                        for gate in self.gates:
                            await gate(item.account_id, item.purpose)
                    except BaseException:
                        self._sending.release()
                        raise
                try:
                    if not self._lease_left(item):
                        # a slow account's gate held the row too long: hand it back unsent
                        # rather than send on a lease another dispatcher may be taking over
                        await self._release(item)
                        return
                    sent_at = time.perf_counter()
                    result = await adapter.send(outbound)
                finally:
                    self._sending.release()
        except Exception as exc:  # noqa: BLE001  (an adapter bug must not lose the row)
            log.exception("adapter %s raised on outbox=%s", loaded.kind, item.id)
            sent_at = time.perf_counter()
            result = SendResult(
                SendOutcome.UNKNOWN, error_code="adapter_error", reason=repr(exc)[:300]
            )
        SEND_SECONDS.labels(channel=loaded.kind).observe(time.perf_counter() - sent_at)
        record_send(loaded.kind, result.outcome.value, result.error_code)
        await self._record(item, result)

    async def _release(self, item: ClaimedItem) -> None:
        """Give an unsent row back: due again at once, no attempt counted."""
        t = _OUTBOX.c
        async with self.db.transaction() as s:
            await s.execute(
                update(_OUTBOX)
                .where(t.id == item.id, t.lease_owner == self.owner)
                .values(status="pending", lease_until=None, lease_owner=None)
            )
        log.info("outbox=%s released unsent: its lease ran out at the rate gate", item.id)

    async def _record(self, item: ClaimedItem, result: SendResult) -> None:
        """Record `result`; returns once committed (together with whatever else finished)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._results.append(_Recorded(item, result, future))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.get_running_loop().create_task(self._flush_results())
        status = await future
        log.info(
            "outbox=%s key=%s account=%s outcome=%s code=%s attempt=%d",
            item.id,
            item.idempotency_key,
            item.account_id,
            result.outcome.value,
            result.error_code,
            item.attempts + 1,
        )
        for listener in self.listeners:
            await listener(item.id, item.message_id, status)

    async def _flush_results(self) -> None:
        pause = 0.2
        while self._results:
            batch, self._results = self._results, []
            try:
                statuses = await self._write_results(batch)
            except (DBAPIError, OSError) as exc:
                # store down: the sends happened, so keep their results and retry while
                # the leases last, rather than leave the rows to wait out the lease and
                # a reconcile (issue 10: PostgreSQL outage)
                keep = [e for e in batch if self._lease_left(e.item, margin=0.0)]
                for entry in batch:
                    if entry not in keep and not entry.future.done():
                        entry.future.set_exception(exc)
                self._results = keep + self._results
                log.warning("recording %d outbox results failed, retrying: %r", len(keep), exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            except Exception as exc:  # noqa: BLE001  (handed to every waiting sender)
                log.exception("recording %d outbox results failed", len(batch))
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
                continue
            pause = 0.2
            for entry, status in zip(batch, statuses, strict=True):
                if not entry.future.done():
                    entry.future.set_result(status)

    async def _write_results(self, batch: Sequence[_Recorded]) -> list[str]:
        now = utcnow()
        outbox_rows: list[dict[str, Any]] = []
        message_rows: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        statuses: list[str] = []
        for entry in batch:
            values, msg_values = entry.item.result_values(entry.result, now)
            statuses.append(str(values["status"]))
            outbox_rows.append({"b_id": entry.item.id, **values})
            if entry.item.message_id is not None and msg_values:
                row = {
                    "b_mid": entry.item.message_id,
                    "b_rank": _RANK.get(msg_values["status"], 0),
                    **msg_values,
                }
                message_rows.setdefault(tuple(sorted(msg_values)), []).append(row)
        t = _OUTBOX.c
        async with self.db.transaction() as s:
            # only while the lease is still ours: a reclaimed row belongs to its new owner
            await s.execute(
                update(_OUTBOX)
                .where(t.id == bindparam("b_id"), t.lease_owner == self.owner)
                .values(
                    lease_until=None,
                    lease_owner=None,
                    **{c: bindparam(c, type_=t[c].type) for c in _RESULT_COLUMNS},
                ),
                outbox_rows,
            )
            m = _MESSAGES.c
            for columns, rows in message_rows.items():
                # never move a message's status backwards (a receipt may have come first)
                await s.execute(
                    update(_MESSAGES)
                    .where(m.id == bindparam("b_mid"), _rank_of(m.status) <= bindparam("b_rank"))
                    .values(**{c: bindparam(c, type_=m[c].type) for c in columns}),
                    rows,
                )
        return statuses
