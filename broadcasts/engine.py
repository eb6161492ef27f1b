"""The broadcast engine: one `tick` fires due schedules, freezes new runs, carries send
outcomes back and queues the next due recipients. `bot.scheduler` calls it in a loop;
tests call it directly with a controllable clock. Every step is its own transaction and
safe to repeat, so a process killed between any two statements resumes from the rows.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from conversations.db import Database, utcnow

from .audience import AudienceRegistry
from .firing import fire_due
from .freeze import freeze_run
from .models import BroadcastRun, RunStatus
from .policy import PolicyRegistry
from .sending import queue_batch, settle_run
from .settings import BroadcastSettings
from .tasks import TaskChannels, create_run_tasks, settle_tasks

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    fired: int = 0
    frozen: int = 0
    queued: int = 0
    skipped: int = 0
    settled: int = 0

    @property
    def busy(self) -> bool:
        """More work is probably waiting: tick again at once. Settling is a sweep and
        does not count, or the sweep would hold SQLite's write lock back to back."""
        return bool(self.fired or self.frozen or self.queued or self.skipped)


class BroadcastEngine:
    def __init__(
        self,
        db: Database,
        settings: BroadcastSettings,
        *,
        policies: PolicyRegistry | None = None,
        audiences: AudienceRegistry | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_queued: Sequence[Callable[[], None]] = (),
        owner: str | None = None,
        settle_every: float = 1.0,
        tasks: TaskChannels | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.policies = policies or PolicyRegistry()
        self.audiences = audiences or AudienceRegistry()
        self.clock = clock
        self.on_queued = list(on_queued)
        self.owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.settle_every = timedelta(seconds=settle_every)
        self._horizon = timedelta(seconds=settings.queue_horizon_seconds)
        self._settled_at: dict[int, datetime] = {}
        # a paced run whose outbox holds enough work: not worth a batch before this time
        self._refill_at: dict[int, datetime] = {}
        # channels reached through staff-confirmed tasks (WeCom 企业群发)
        self.tasks = tasks or TaskChannels()

    async def tick(self, max_batches: int = 20) -> TickReport:
        """One pass over every open run; returns what moved (empty = nothing to do)."""
        report = TickReport()
        async with self.db.transaction() as s:
            report.fired = len(await fire_due(s, self.clock()))
        async with self.db.reading() as s:
            runs = (
                await s.execute(
                    select(BroadcastRun.id, BroadcastRun.status)
                    .where(
                        BroadcastRun.status.in_((RunStatus.FREEZING.value, RunStatus.SENDING.value))
                    )
                    .order_by(BroadcastRun.id)
                )
            ).all()
        for run_id, status in runs:
            if status == RunStatus.FREEZING.value:
                async with self.db.transaction() as s:
                    total = await freeze_run(s, run_id, self.audiences, self.clock())
                if total is not None:
                    report.frozen += 1
                    log.info("run=%s frozen with %d recipients", run_id, total)
            await self._drive(run_id, report, max_batches)
        if report.queued:
            for wake in self.on_queued:
                wake()
        return report

    async def _drive(self, run_id: int, report: TickReport, max_batches: int) -> None:
        now = self.clock()
        last = self._settled_at.get(run_id)
        if last is None or now - last >= self.settle_every or now < last:
            self._settled_at[run_id] = now
            async with self.db.transaction() as s:
                report.settled += await settle_tasks(s, run_id, self.tasks)
                report.settled += await settle_run(
                    s,
                    run_id,
                    owner=self.owner,
                    policies=self.policies,
                    settings=self.settings,
                    now=now,
                )
        refill_at = self._refill_at.get(run_id)
        if refill_at is not None and now < refill_at and now >= refill_at - self._horizon:
            # the outbox still holds over half a horizon of paced sends for this run:
            # loading a batch now would plan a handful of rows at the price of hundreds
            return
        self._refill_at.pop(run_id, None)
        for _ in range(max_batches):
            async with self.db.transaction() as s:
                batch = await queue_batch(
                    s,
                    run_id,
                    owner=self.owner,
                    policies=self.policies,
                    settings=self.settings,
                    now=self.clock(),
                    tasks=self.tasks,
                )
            report.queued += batch.queued
            report.skipped += batch.skipped
            if batch.waiting_until is not None:
                self._refill_at[run_id] = batch.waiting_until - self._horizon / 2
            if batch.empty and self.tasks.kinds():
                # the whole audience is decided: one task per salesperson, all at once
                async with self.db.transaction() as s:
                    report.queued += await create_run_tasks(s, run_id, self.tasks)
            if (
                batch.empty
                or batch.waiting_until is not None
                or not (batch.queued or batch.skipped)
            ):
                break
