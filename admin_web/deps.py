"""What the console needs from the rest of crmbot, passed in by `bot.runtime`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy import ColumnElement

from channels.media import MediaStore
from channels.state import SharedState
from conversations.db import Database
from conversations.handover import CustomerTransfer

from .live import InProcessBus, LiveBus


class CustomerSimulator(Protocol):
    """Sandbox mode: send a message as a customer through a provider simulator."""

    def accounts(self) -> Sequence[tuple[int, str]]: ...

    async def send_as_customer(self, account_id: int, customer: str, text: str) -> int: ...

    def delivered(self, limit: int = 50) -> Sequence[Mapping[str, Any]]: ...


@dataclass(frozen=True)
class NavEntry:
    """A top-level console page another package adds (auto-reply, tags, broadcasts)."""

    path: str
    label_zh: str
    label_en: str
    roles: frozenset[str]  # Role values allowed to see the entry
    order: int = 100


# A section another package renders into a console page (tags on the customer page,
# auto-reply and broadcast charts on the dashboard …). Returns HTML (already escaped,
# e.g. from its own aiohttp_jinja2 template) or None to show nothing.
CustomerPanel = Callable[[web.Request, int], Awaitable[str | None]]  # customer id
ConversationPanel = Callable[[web.Request, int], Awaitable[str | None]]  # conversation id
DashboardPanel = Callable[[web.Request, datetime, datetime], Awaitable[str | None]]


class InboxFilterHook(Protocol):
    """An extra inbox filter (e.g. by tag): a form control and the condition it selects."""

    async def control(self, request: web.Request) -> str: ...

    def condition(self, request: web.Request) -> ColumnElement[bool] | None: ...


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str


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
    # their navigation entries, shown to the roles named in each entry
    nav: list[NavEntry] = field(default_factory=list)
    # live updates; the scale helper passes the Redis fan-out here
    live: LiveBus = field(default_factory=InProcessBus)
    # media files (images, voice, attachments) referenced by message payloads
    media: MediaStore | None = None
    # encrypt channel secrets before they are stored (bot.secrets.SecretBox.seal)
    seal_secrets: Callable[[Mapping[str, str]], dict[str, str]] | None = None
    # the adapter's check_connection for an account id ("test connection" button)
    check_connection: Callable[[int], Awaitable[ConnectionResult]] | None = None
    # drop a cached adapter after its account was edited (AccountDirectory.forget)
    forget_account: Callable[[int], None] | None = None
    # provider side of a departed salesperson's hand-over (WeCom transfer_customer)
    customer_transfer: CustomerTransfer | None = None
    # sections other packages add to pages (see CustomerPanel and friends above)
    customer_panels: list[CustomerPanel] = field(default_factory=list)
    conversation_panels: list[ConversationPanel] = field(default_factory=list)
    dashboard_panels: list[DashboardPanel] = field(default_factory=list)
    inbox_filters: list[InboxFilterHook] = field(default_factory=list)


DEPS_KEY = web.AppKey("crmbot_console_deps", ConsoleDeps)
