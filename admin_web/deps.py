"""What the console needs from the rest of crmbot, passed in by `bot.runtime`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from channels.state import SharedState
from conversations.db import Database


class CustomerSimulator(Protocol):
    """Sandbox mode: send a message as a customer through a provider simulator."""

    def accounts(self) -> Sequence[tuple[int, str]]: ...

    async def send_as_customer(self, account_id: int, customer: str, text: str) -> int: ...

    def delivered(self, limit: int = 50) -> Sequence[Mapping[str, Any]]: ...


@dataclass
class ConsoleDeps:
    db: Database
    secret_key: str
    public_url: str
    state: SharedState
    wake_outbox: Callable[[], None]
    channel_labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # kind → (zh, en)
    simulator: CustomerSimulator | None = None
    # extra route tables other packages add to the console (autoreply, tagging, …)
    extra_routes: list[web.RouteTableDef] = field(default_factory=list)


DEPS_KEY = web.AppKey("crmbot_console_deps", ConsoleDeps)
