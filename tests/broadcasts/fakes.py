"""A counting fake provider and adapter for broadcast tests: records every accepted send
with its time, fails chosen recipients permanently, and answers reconcile lookups the
way a provider's receipt query would (Aliyun QuerySendDetails by OutId)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from channels.base import ChannelContext, ConnectionCheck, RawRequest, RawResponse
from channels.registry import AdapterRegistry, AdapterSpec
from conversations.types import (
    AccountRef,
    ChannelRules,
    Inbound,
    Outbound,
    SendOutcome,
    SendResult,
)


@dataclass
class FakeProvider:
    fail_recipients: set[str] = field(default_factory=set)
    sends: list[tuple[float, str, str, str]] = field(default_factory=list)  # t, kind, to, key
    texts: dict[str, str] = field(default_factory=dict)  # key → text

    def accept(self, kind: str, message: Outbound) -> SendResult:
        if message.recipient in self.fail_recipients:
            return SendResult(SendOutcome.FAILED, error_code="invalid", reason="bad number")
        self.sends.append((time.monotonic(), kind, message.recipient, message.key))
        self.texts[message.key] = message.text
        return SendResult.sent(f"fake-{len(self.sends)}")

    def per_recipient(self) -> Counter[str]:
        return Counter(to for _t, _k, to, _key in self.sends)

    def sent_keys(self) -> set[str]:
        return {key for *_rest, key in self.sends}


def fake_registry(provider: FakeProvider, kinds: Sequence[str]) -> AdapterRegistry:
    registry = AdapterRegistry()
    for kind in kinds:

        class FakeAdapter:
            rules: ClassVar[ChannelRules] = ChannelRules()

            def __init__(self, account: AccountRef, _ctx: ChannelContext, k: str = kind) -> None:
                self.kind = k
                self.account = account

            async def verify(self, request: RawRequest) -> None:
                return None

            def parse(self, request: RawRequest) -> Sequence[Inbound]:
                return []

            def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
                return RawResponse()

            async def send(self, message: Outbound) -> SendResult:
                return provider.accept(self.kind, message)

            async def reconcile(self, message: Outbound) -> SendResult | None:
                return SendResult.sent() if message.key in provider.sent_keys() else None

            async def check_connection(self) -> ConnectionCheck:
                return ConnectionCheck(True, "ok")

        FakeAdapter.kind = kind  # type: ignore[attr-defined]
        registry.register(AdapterSpec(kind, FakeAdapter, ChannelRules(), kind, kind))  # type: ignore[arg-type]
    return registry


def context() -> ChannelContext:
    from pathlib import Path

    from channels.media import MediaStore
    from channels.state import MemoryState

    return ChannelContext(
        http=None,  # type: ignore[arg-type]  # fakes make no HTTP calls
        state=MemoryState(),
        media=MediaStore(Path("unused")),
        public_url="http://127.0.0.1",
    )
