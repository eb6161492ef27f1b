"""The outbox dispatcher: claims due rows, sends them through their account's adapter,
and records the outcome (DESIGN.md invariant 3).

- Claiming is a compare-and-set on (status, lease) so N dispatchers never send one row
  twice at once; on PostgreSQL the candidate scan uses FOR UPDATE SKIP LOCKED.
- A lease that expires while 'sending' means the sender died mid-call: the outcome is
  unknown, so the row is reconciled (adapter.reconcile) before any new attempt.
- RETRY backs off exponentially with jitter, honouring the provider's retry_after.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import and_, or_, select, update

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

    def wake(self) -> None:
        """Something was queued in this process: look now instead of at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:  # noqa: BLE001  (the dispatcher must outlive a bad batch)
                log.exception("outbox batch failed")
                handled = 0
            if handled:
                continue
            self._wake.clear()
            waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
            _done, pending = await asyncio.wait(
                waiters, timeout=self.idle_poll, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def run_once(self) -> int:
        """Claim and send one batch; returns how many rows were handled."""
        claimed = await self._claim()
        if not claimed:
            return 0
        sem = asyncio.Semaphore(self.concurrency)

        async def one(item_id: int) -> None:
            async with sem:
                await self._deliver(item_id)

        await asyncio.gather(*(one(i) for i in claimed))
        return len(claimed)

    async def _claim(self) -> list[int]:
        now = utcnow()
        due = or_(
            and_(OutboxItem.status.in_(("pending", "unknown")), OutboxItem.next_attempt_at <= now),
            and_(OutboxItem.status == "sending", OutboxItem.lease_until < now),
        )
        async with self.db.transaction() as s:
            query = (
                select(OutboxItem.id, OutboxItem.status)
                .where(due)
                .order_by(OutboxItem.next_attempt_at)
                .limit(self.batch)
            )
            if self.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await s.execute(query)).all()
            claimed: list[int] = []
            for item_id, status in rows:
                # a lease that ran out while 'sending': the outcome is unknown
                new_mark = "unknown" if status == "sending" else status
                result = await s.execute(
                    update(OutboxItem)
                    .where(OutboxItem.id == item_id, due)
                    .values(
                        status="sending",
                        lease_until=now + self.lease,
                        lease_owner=self.owner,
                        last_error=OutboxItem.last_error
                        if new_mark != "unknown"
                        else "outcome unknown: reconciling",
                        last_error_code=OutboxItem.last_error_code
                        if new_mark != "unknown"
                        else "unknown",
                    )
                )
                if getattr(result, "rowcount", 0) == 1:
                    claimed.append(item_id)
            return claimed

    async def _outbound(self, item: OutboxItem) -> Outbound | None:
        loaded = await self.accounts.by_id(item.account_id)
        if loaded is None:
            return None
        payload = dict(item.payload)
        context: dict[str, Any] = {}
        if item.message_id is not None:
            async with self.db.reading() as s:
                msg = await s.get(Message, item.message_id)
                if msg is not None:
                    last_in = await s.scalar(
                        select(Message)
                        .where(
                            Message.conversation_id == msg.conversation_id,
                            Message.direction == "in",
                            Message.id < msg.id,
                        )
                        .order_by(Message.id.desc())
                        .limit(1)
                    )
                    if last_in is not None:
                        # channels that thread (email) reply to the customer's last message
                        context["reply_to"] = {
                            "provider_message_id": last_in.provider_message_id,
                            "thread": (last_in.payload or {}).get("thread"),
                        }
        return Outbound(
            key=item.idempotency_key,
            account=loaded.ref,
            recipient=item.recipient,
            kind=MessageKind(payload.get("kind", MessageKind.TEXT.value)),
            text=str(payload.get("text", "")),
            purpose=Purpose(item.purpose),
            payload=payload,
            context=context,
            attempt=item.attempts + 1,
        )

    async def _deliver(self, item_id: int) -> None:
        with bind(outbox_id=item_id):
            await self._deliver_bound(item_id)

    async def _deliver_bound(self, item_id: int) -> None:
        async with self.db.reading() as s:
            item = await s.get(OutboxItem, item_id)
        if item is None or item.lease_owner != self.owner:
            return
        outbound = await self._outbound(item)
        if outbound is None:
            await self._record(
                item,
                SendResult(
                    SendOutcome.FAILED,
                    error_code="no_account",
                    reason="channel account missing or disabled",
                ),
            )
            return
        loaded = await self.accounts.by_id(item.account_id)
        assert loaded is not None
        adapter = loaded.adapter
        reconciling = item.last_error_code == "unknown"
        sent_at = time.perf_counter()
        try:
            if reconciling and isinstance(adapter, ReconcilingAdapter):
                result = await adapter.reconcile(outbound)
                if result is None:
                    result = SendResult(
                        SendOutcome.UNKNOWN, error_code="unknown", reason="outcome still unknown"
                    )
            else:
                for gate in self.gates:
                    await gate(item.account_id, item.purpose)
                result = await adapter.send(outbound)
        except Exception as exc:  # noqa: BLE001  (an adapter bug must not lose the row)
            log.exception("adapter %s raised on outbox=%s", loaded.kind, item.id)
            result = SendResult(
                SendOutcome.UNKNOWN, error_code="adapter_error", reason=repr(exc)[:300]
            )
        SEND_SECONDS.labels(channel=loaded.kind).observe(time.perf_counter() - sent_at)
        record_send(loaded.kind, result.outcome.value, result.error_code)
        await self._record(item, result)

    async def _record(self, item: OutboxItem, result: SendResult) -> None:
        now = utcnow()
        # waiting for our own rate limit is not a failed attempt
        attempts = item.attempts + (0 if result.error_code == "rate_limited" else 1)
        values: dict[str, Any] = {"attempts": attempts, "lease_until": None, "lease_owner": None}
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
        elif result.outcome == SendOutcome.FAILED or attempts >= item.max_attempts:
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
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxItem)
                .where(OutboxItem.id == item.id, OutboxItem.lease_owner == self.owner)
                .values(**values)
            )
            if item.message_id is not None and msg_values:
                msg = await s.get(Message, item.message_id)
                if msg is not None and _RANK.get(msg.status, 0) <= _RANK.get(
                    msg_values["status"], 0
                ):
                    for key, value in msg_values.items():
                        setattr(msg, key, value)
        log.info(
            "outbox=%s key=%s account=%s outcome=%s code=%s attempt=%d",
            item.id,
            item.idempotency_key,
            item.account_id,
            result.outcome.value,
            result.error_code,
            attempts,
        )
        for listener in self.listeners:
            await listener(item.id, item.message_id, str(values["status"]))
