"""The `crmbot scheduler` role: fires broadcast schedules and drives their runs.

Fire-once does not depend on this process being alone: a fire is an INSERT under the
unique (broadcast_id, fire_time) (DESIGN.md invariant 5), and queuing is per-row
compare-and-set, so two schedulers (or a scheduler restarted mid-run) never double a
recipient. A Redis leader lock (bot/leader.py) can be added on top to save the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from broadcasts.audience import AudienceRegistry
from broadcasts.engine import BroadcastEngine, TickReport
from broadcasts.policy import PolicyRegistry
from broadcasts.settings import BroadcastSettings
from broadcasts.tasks import TaskChannels
from broadcasts.throttle import AccountThrottle, rate_from_config
from channels.state import SharedState
from conversations.db import Database

from .accounts import AccountDirectory
from .config import Settings

log = logging.getLogger(__name__)


def broadcast_settings(settings: Settings) -> BroadcastSettings:
    """The validated `[broadcasts]` section."""
    return BroadcastSettings.from_section(
        settings.section("broadcasts"),
        secret_key=settings.secret_key,
        public_url=settings.public_url,
        timezone=settings.timezone,
    )


def build_engine(
    db: Database,
    settings: Settings,
    on_queued: Sequence[Callable[[], None]] = (),
    *,
    policies: PolicyRegistry | None = None,
    audiences: AudienceRegistry | None = None,
    tasks: TaskChannels | None = None,
) -> BroadcastEngine:
    """The engine the scheduler role ticks; pass the same registries the console uses
    (segments from tagging, channel policies from the SMS/email packages)."""
    return BroadcastEngine(
        db,
        broadcast_settings(settings),
        policies=policies,
        audiences=audiences,
        on_queued=on_queued,
        tasks=tasks,
    )


def build_throttle(accounts: AccountDirectory, state: SharedState) -> AccountThrottle:
    """The dispatcher's send gate: `rate_per_second` from each account's config."""

    async def rate_of(account_id: int) -> float | None:
        loaded = await accounts.by_id(account_id)
        return rate_from_config(loaded.ref.config) if loaded is not None else None

    return AccountThrottle(state, rate_of)


async def run_scheduler(engine: BroadcastEngine, stop: asyncio.Event, idle: float = 1.0) -> None:
    """Tick until `stop`; busy ticks follow each other, idle ones wait `idle` seconds."""
    while not stop.is_set():
        try:
            report = await engine.tick()
        except Exception:  # noqa: BLE001  (the loop must outlive one bad tick; rows are the truth)
            log.exception("broadcast tick failed")
            report = TickReport()
        if report.busy:
            log.debug("broadcast tick: %s", report)
            await asyncio.sleep(0)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=idle)
