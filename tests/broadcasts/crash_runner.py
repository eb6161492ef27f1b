"""A worker for the crash test: the broadcast engine and the outbox dispatcher in one
process over a shared SQLite store, sending through an adapter that posts to a counting
provider in the test process. The test SIGKILLs it at random moments and restarts it.

    python -m tests.broadcasts.crash_runner <database_url> <provider_url>
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import aiohttp

from bot.accounts import AccountDirectory
from bot.outbox import OutboxDispatcher
from bot.scheduler import run_scheduler
from bot.secrets import SecretBox
from broadcasts.engine import BroadcastEngine
from broadcasts.policy import PolicyRegistry, WeComPolicy
from broadcasts.settings import BroadcastSettings
from channels.base import ChannelContext, ConnectionCheck, RawRequest, RawResponse
from channels.media import MediaStore
from channels.registry import AdapterRegistry, AdapterSpec
from channels.state import MemoryState
from conversations.db import Database, create_engine
from conversations.types import (
    AccountRef,
    ChannelRules,
    Inbound,
    Outbound,
    SendOutcome,
    SendResult,
)

KIND = "fake.count"


def registry(http: aiohttp.ClientSession) -> AdapterRegistry:
    class CountingAdapter:
        kind: ClassVar[str] = KIND
        rules: ClassVar[ChannelRules] = ChannelRules()

        def __init__(self, account: AccountRef, _ctx: ChannelContext) -> None:
            self.base = str(account.config["provider_url"])

        async def verify(self, request: RawRequest) -> None:
            return None

        def parse(self, request: RawRequest) -> Sequence[Inbound]:
            return []

        def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
            return RawResponse()

        async def send(self, message: Outbound) -> SendResult:
            async with http.post(
                f"{self.base}/send", json={"key": message.key, "to": message.recipient}
            ) as resp:
                resp.raise_for_status()
            return SendResult.sent(message.key)

        async def reconcile(self, message: Outbound) -> SendResult | None:
            # like a provider's receipt lookup by our id (Aliyun OutId)
            async with http.get(f"{self.base}/lookup", params={"key": message.key}) as resp:
                found = (await resp.json())["found"]
            if found:
                return SendResult.sent(message.key)
            return SendResult(SendOutcome.RETRY, error_code="not_received", reason="resend")

        async def check_connection(self) -> ConnectionCheck:
            return ConnectionCheck(True, "ok")

    reg = AdapterRegistry()
    reg.register(AdapterSpec(KIND, CountingAdapter, ChannelRules(), KIND, KIND))
    return reg


async def main(database_url: str) -> None:
    db = Database(create_engine(database_url, sqlite_synchronous="NORMAL"))
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        ctx = ChannelContext(http, MemoryState(), MediaStore(Path(".")), "http://127.0.0.1")
        accounts = AccountDirectory(db, registry(http), ctx, SecretBox("k" * 40))
        dispatcher = OutboxDispatcher(
            db, accounts, lease_seconds=2, batch=200, concurrency=32, idle_poll=0.05
        )
        policies = PolicyRegistry()
        policies.register(KIND, WeComPolicy())
        engine = BroadcastEngine(
            db,
            BroadcastSettings(batch=500, lease_seconds=3, queue_horizon_seconds=3600),
            policies=policies,
            on_queued=[dispatcher.wake],
        )
        await asyncio.gather(run_scheduler(engine, stop, idle=0.1), dispatcher.run(stop))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
