"""Broadcast benchmark (issue 8): freeze N recipients, then send through a simulator
limited to R messages per second for a while, with the real engine, dispatcher and send
gate in one process on a scratch store.

Prints JSON: freeze seconds for N recipients; achieved send rate over the measured
window against R (goal ≥ 0.95·R); the most sends the simulator saw in any one-second
window (goal ≤ R); how many sends it refused for exceeding R (goal 0).

    python -m bench.broadcast --n 100000 --rate 200 --seconds 30
    python -m bench.broadcast --quick     # 20,000 recipients, 10 s, for a before/after check
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from sqlalchemy import func, insert, select

from bot.accounts import AccountDirectory
from bot.migrate import upgrade
from bot.outbox import OutboxDispatcher
from bot.runtime import settle_heap
from bot.scheduler import run_scheduler
from bot.secrets import SecretBox
from broadcasts.audience import AudienceRegistry
from broadcasts.control import Draft, create_broadcast, submit
from broadcasts.engine import BroadcastEngine
from broadcasts.firing import fire_due
from broadcasts.freeze import freeze_run
from broadcasts.models import BroadcastRecipient
from broadcasts.policy import PolicyRegistry, WeComPolicy
from broadcasts.settings import BroadcastSettings
from broadcasts.throttle import AccountThrottle
from channels.base import ChannelContext, ConnectionCheck, RawRequest, RawResponse
from channels.media import MediaStore
from channels.registry import AdapterRegistry, AdapterSpec
from channels.state import MemoryState
from conversations.db import Database, create_engine, utcnow
from conversations.models import ChannelAccount, Customer, Identity
from conversations.types import (
    AccountRef,
    ChannelRules,
    Inbound,
    Outbound,
    SendOutcome,
    SendResult,
)

KIND = "bench.rated"


class RatedSimulator:
    """A provider that accepts at most `rate` sends in any one-second window."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.accepted: list[float] = []
        self.refused = 0
        self._window: deque[float] = deque()

    def send(self) -> bool:
        now = time.monotonic()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate:
            self.refused += 1
            return False
        self._window.append(now)
        self.accepted.append(now)
        return True

    def max_in_one_second(self) -> int:
        best = 0
        for i, t in enumerate(self.accepted):
            best = max(best, bisect.bisect_left(self.accepted, t + 1.0) - i)
        return best


def _registry(sim: RatedSimulator) -> AdapterRegistry:
    class RatedAdapter:
        kind: ClassVar[str] = KIND
        rules: ClassVar[ChannelRules] = ChannelRules()

        def __init__(self, account: AccountRef, _ctx: ChannelContext) -> None:
            self.account = account

        async def verify(self, request: RawRequest) -> None:
            return None

        def parse(self, request: RawRequest) -> Sequence[Inbound]:
            return []

        def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
            return RawResponse()

        async def send(self, message: Outbound) -> SendResult:
            if sim.send():
                return SendResult.sent(message.key)
            return SendResult(SendOutcome.RETRY, error_code="45009", reason="rate exceeded")

        async def check_connection(self) -> ConnectionCheck:
            return ConnectionCheck(True, "ok")

    registry = AdapterRegistry()
    registry.register(AdapterSpec(KIND, RatedAdapter, ChannelRules(), KIND, KIND))
    return registry


async def _seed(db: Database, n: int, rate: float) -> tuple[int, int]:
    now = utcnow()
    async with db.transaction() as s:
        account = ChannelAccount(
            kind=KIND,
            name="bench",
            callback_token="bench",
            config={"rate_per_second": rate, "marketing_hours": "00:00-24:00"},
        )
        s.add(account)
        await s.flush()
        for start in range(1, n + 1, 20_000):
            ids = range(start, min(n, start + 19_999) + 1)
            await s.execute(
                insert(Customer),
                [
                    {
                        "id": i,
                        "display_name": f"客户{i}",
                        "profile": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            await s.execute(
                insert(Identity),
                [
                    {
                        "customer_id": i,
                        "channel_kind": KIND,
                        "account_id": account.id,
                        "external_id": f"u{i}",
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
        policies = PolicyRegistry()
        policies.register(KIND, WeComPolicy())
        broadcast = await create_broadcast(
            s,
            Draft(
                name="bench",
                audience={"kind": "channel", "channel_kind": KIND},
                content={"wecom": {"msgtype": "text", "text": "{customer_name}您好，新品上市"}},
                channel_order=[account.id],
            ),
            actor_id=None,
        )
        await submit(
            s, broadcast, actor_id=None, policies=policies, audiences=AudienceRegistry(), now=now
        )
        return account.id, broadcast.id


async def run(n: int, rate: float, seconds: float, database_url: str | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="crmbot-bench-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        db = Database(create_engine(url, sqlite_synchronous="NORMAL"))
        try:
            account_id, _broadcast_id = await _seed(db, n, rate)
            async with db.transaction() as s:
                [run_id] = await fire_due(s, utcnow())
            started = time.perf_counter()
            async with db.transaction() as s:
                total = await freeze_run(s, run_id, AudienceRegistry(), utcnow())
            freeze_seconds = time.perf_counter() - started

            sim = RatedSimulator(rate)
            ctx = ChannelContext(None, MemoryState(), MediaStore(Path(tmp)), "http://127.0.0.1")  # type: ignore[arg-type]
            accounts = AccountDirectory(db, _registry(sim), ctx, SecretBox("k" * 40))

            async def rate_of(aid: int) -> float | None:
                return rate if aid == account_id else None

            dispatcher = OutboxDispatcher(
                db,
                accounts,
                batch=max(50, int(rate)),
                concurrency=32,
                idle_poll=0.05,
                gates=[AccountThrottle(MemoryState(), rate_of)],
            )
            policies = PolicyRegistry()
            policies.register(KIND, WeComPolicy())
            engine = BroadcastEngine(
                db,
                BroadcastSettings(batch=500, queue_horizon_seconds=5),
                policies=policies,
                on_queued=[dispatcher.wake],
            )
            settle_heap()  # as a worker does once it has started
            stop = asyncio.Event()
            cpu0 = time.process_time()
            tasks = [
                asyncio.create_task(run_scheduler(engine, stop, idle=0.2)),
                asyncio.create_task(dispatcher.run(stop)),
            ]
            await asyncio.sleep(seconds)
            ended = time.monotonic()  # the simulator's clock
            stop.set()
            await asyncio.gather(*tasks)
            cpu_sending = time.process_time() - cpu0
            async with db.reading() as s:
                queued = await s.scalar(
                    select(func.count())
                    .select_from(BroadcastRecipient)
                    .where(
                        BroadcastRecipient.run_id == run_id,
                        BroadcastRecipient.status != "pending",
                    )
                )
            # steady state: skip the first second (engine start-up, first batch), then
            # count the sends in whole seconds before the stop. (n - 1) / (last - first
            # send) would flatter a gate that sends a catch-up clump at either end.
            sends = sim.accepted
            steady_from = sends[0] + 1.0 if sends else ended
            steady_seconds = max(0, math.floor(ended - steady_from))
            steady_until = steady_from + steady_seconds
            steady = sum(1 for t in sends if steady_from <= t < steady_until)
            achieved = steady / steady_seconds if steady_seconds else 0.0
            return {
                "recipients": total,
                "freeze_seconds": round(freeze_seconds, 2),
                "freeze_goal_seconds": 10,
                "rate_limit": rate,
                "measured_seconds": seconds,
                "sent": len(sends),
                "queued_or_done": queued,
                "achieved_rate": round(achieved, 1),
                "achieved_ratio": round(achieved / rate, 3),
                "max_in_any_second": sim.max_in_one_second(),
                "refused_over_limit": sim.refused,
                # engine + dispatcher + simulator, per send: robust on a busy machine
                "cpu_ms_per_send": round(cpu_sending * 1000 / max(1, len(sends)), 3),
                "store": "sqlite" if url.startswith("sqlite") else "postgresql",
            }
        finally:
            await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--database-url")
    parser.add_argument("--quick", action="store_true", help="20,000 recipients for 10 s")
    args = parser.parse_args()
    if args.quick:
        args.n, args.seconds = 20_000, 10.0
    result = asyncio.run(run(args.n, args.rate, args.seconds, args.database_url))
    print(json.dumps(result, ensure_ascii=False, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
