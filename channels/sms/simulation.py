"""What the three gateway simulators share: an aiohttp app on 127.0.0.1, a delivery
ledger per recipient, a token-bucket rate limit, error injection, held responses (to
provoke client timeouts) and pushes to crmbot's callback URL.

Tests, sandbox mode and the broadcast crash tests use these; nothing here talks to a
real provider.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web


@dataclass
class SimulatedSms:
    """One message the simulator accepted."""

    message_id: str
    phone: str  # E.164
    text: str
    key: str | None  # OutId / SessionContext / our StatusCallback key
    sent_at: float
    template: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    status: str = "pending"  # pending | delivered | failed


@dataclass
class InjectedError:
    code: str
    message: str
    http_status: int = 200


class GatewaySimulator:
    """Base: subclasses add routes in `build_app` and the provider's shapes."""

    def __init__(
        self,
        *,
        callback_url: str | None = None,
        rate_per_second: float | None = None,
        burst: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.callback_url = callback_url
        self.rate_per_second = rate_per_second
        self.burst = burst if burst is not None else (rate_per_second or 1.0)
        self.clock = clock
        self.sent: list[SimulatedSms] = []
        self.deliveries: Counter[str] = Counter()  # E.164 → accepted sends
        self.requests = 0
        self._tokens = self.burst
        self._stamp = clock()
        self._errors: list[InjectedError] = []
        self._held: asyncio.Event | None = None
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    # ---------------------------------------------------------------- lifecycle

    def build_app(self) -> web.Application:
        raise NotImplementedError  # abstract: each gateway builds its own routes

    async def start(self) -> Self:
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        self.release()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- behaviour knobs

    def fail_next(self, code: str, message: str = "", http_status: int = 200) -> None:
        """The next send answers with this provider error (FIFO when called again)."""
        self._errors.append(InjectedError(code, message or code, http_status))

    def hold_responses(self) -> None:
        """Accept sends but do not answer until `release()`: the client times out."""
        self._held = asyncio.Event()

    def release(self) -> None:
        if self._held is not None:
            self._held.set()
            self._held = None

    def count_for(self, phone: str) -> int:
        return self.deliveries[phone]

    # ---------------------------------------------------------------- for subclasses

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def take_error(self) -> InjectedError | None:
        return self._errors.pop(0) if self._errors else None

    def rate_limited(self) -> bool:
        if self.rate_per_second is None:
            return False
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate_per_second)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return False
        return True

    def accept(self, sms: SimulatedSms) -> SimulatedSms:
        self.sent.append(sms)
        self.deliveries[sms.phone] += 1
        return sms

    async def maybe_hold(self) -> None:
        if self._held is not None:
            await self._held.wait()

    def find(self, message_id: str) -> SimulatedSms:
        for sms in self.sent:
            if sms.message_id == message_id:
                return sms
        raise KeyError(message_id)

    async def post_callback(
        self,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> tuple[int, str]:
        """POST a push to crmbot; returns (HTTP status, body text)."""
        target = url or self.callback_url
        if not target:
            raise RuntimeError("simulator has no callback_url to push to")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(
            target, data=body, headers={"Content-Type": content_type, **(headers or {})}
        ) as resp:
            return resp.status, await resp.text()


def json_error(status: int, payload: dict[str, Any]) -> web.Response:
    return web.json_response(payload, status=status)
