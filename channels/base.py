"""The contract every channel adapter keeps (STYLE.md §2).

The HTTP layer turns a provider's request into a `RawRequest`, asks the adapter to
`verify` and `parse` it, stores the result, and only then sends the adapter's
`acknowledge` response. Adapters never touch the store.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from conversations.types import AccountRef, ChannelRules, Inbound, Outbound, SendResult

if TYPE_CHECKING:
    import aiohttp

    from .media import MediaStore
    from .state import SharedState

# Providers' own bodies are small (WeCom callbacks are a few KB); 1 MiB is generous
MAX_CALLBACK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RawRequest:
    """A provider's HTTP request as received, framework-free."""

    method: str
    url: str  # full external URL, as the provider signed it (Twilio signs the URL)
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    remote: str | None = None


@dataclass(frozen=True)
class RawResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


class ErrorKind(enum.StrEnum):
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    FORBIDDEN = "forbidden"
    UNSUPPORTED = "unsupported"


class ChannelError(Exception):
    """An inbound request we refuse; `kind` picks the HTTP status and log line."""

    kind: ClassVar[ErrorKind] = ErrorKind.MALFORMED
    status: ClassVar[int] = 400

    def __init__(self, message: str, *, translation_key: str | None = None) -> None:
        super().__init__(message)
        self.translation_key = translation_key or f"channel_error.{self.kind.value}"


class BadSignature(ChannelError):
    kind = ErrorKind.BAD_SIGNATURE
    status = 403


class MalformedPayload(ChannelError):
    kind = ErrorKind.MALFORMED
    status = 400


class PayloadTooLarge(ChannelError):
    kind = ErrorKind.TOO_LARGE
    status = 413


class Forbidden(ChannelError):
    kind = ErrorKind.FORBIDDEN
    status = 403


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str  # readable, already in the operator's terms (e.g. 60020 → 企业可信IP)
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ChannelContext:
    """What adapters may use: HTTP, shared state (tokens, rate limits), media, settings."""

    http: aiohttp.ClientSession
    state: SharedState
    media: MediaStore
    public_url: str  # how providers reach us (callback URLs are built from it)
    api_base_overrides: Mapping[str, str] = field(default_factory=dict)  # simulators


@runtime_checkable
class ChannelAdapter(Protocol):
    """One account's adapter. Built by the registry from the account row."""

    kind: ClassVar[str]
    rules: ClassVar[ChannelRules]

    async def verify(self, request: RawRequest) -> None:
        """Raise `BadSignature`/`MalformedPayload`/`PayloadTooLarge` for a bad request."""

    def parse(self, request: RawRequest) -> Sequence[Inbound]:
        """Pure: the same request always gives the same values; no I/O."""

    def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
        """The provider's expected 'received' answer, sent after the commit."""

    async def send(self, message: Outbound) -> SendResult:
        """Send once; the same `message.key` must not reach the provider twice."""

    async def check_connection(self) -> ConnectionCheck:
        """Used by the console's 'test connection' button."""


@runtime_checkable
class HandshakeAdapter(Protocol):
    """Adapters whose provider verifies the URL with a GET before using it (WeCom)."""

    async def handshake(self, request: RawRequest) -> RawResponse: ...


@runtime_checkable
class PullAdapter(Protocol):
    """Adapters that pull pages (微信客服 sync_msg, archive seq, IMAP UIDs).

    `bot.pollers` runs the loop: it loads the account's cursors, calls `pull`, stores the
    page's items and moves `page.cursor_name` to `page.cursor` in ONE transaction
    (DESIGN.md invariant 2), then calls `pull` again while `has_more`, else
    `wait_for_new` (IMAP IDLE, a kf callback wake-up, or a plain timeout).
    """

    async def pull(self, cursors: Mapping[str, str]) -> PullPage: ...

    async def wait_for_new(self, max_wait: float) -> None: ...


@dataclass(frozen=True)
class PullPage:
    items: Sequence[Inbound]
    cursor_name: str  # e.g. "imap:INBOX", "kf:wkAbc", "archive:seq"
    cursor: str | None  # new value, stored with the items; None = leave as is
    has_more: bool = False


AdapterFactory = Callable[[AccountRef, ChannelContext], ChannelAdapter]
SendHook = Callable[[Outbound], Awaitable[SendResult]]
