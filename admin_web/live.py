"""Live console updates: a tiny publish/subscribe Protocol, an in-process bus, the
server-sent-events endpoint and `notify_message`, which the pipeline and the outbox
call after their commits (the Redis fan-out implements the same Protocol)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy import select

from conversations.access import Viewer, can_view_assigned
from conversations.db import Database
from conversations.models import Conversation, Customer, Message, StaffUser

log = logging.getLogger(__name__)

CONSOLE_CHANNEL = "console"
HEARTBEAT_SECONDS = 15.0
QUEUE_LIMIT = 256


class LiveBus(Protocol):
    """Publish/subscribe for live console updates: `InProcessBus` in one process,
    `bot.fanout.RedisFanout` across web processes."""

    async def publish(self, channel: str, data: dict[str, Any]) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[dict[str, Any]]: ...

    async def close(self) -> None:
        """End every open subscription (application shutdown)."""
        ...


class _Subscription:
    """Registered on creation, so nothing published after `subscribe()` is missed."""

    def __init__(self, bus: InProcessBus, channel: str, buffer: int) -> None:
        self._bus = bus
        self._channel = channel
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(buffer)
        self._open = True

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        item = await self._queue.get() if self._open else None
        if item is None:
            await self.aclose()
            raise StopAsyncIteration
        return item

    def offer(self, item: dict[str, Any] | None) -> None:
        if self._queue.full():
            # a stalled browser loses its oldest events (hints to re-read the store),
            # never blocks the publisher
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(item)

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            self._bus.discard(self._channel, self)


class InProcessBus:
    """Fan-out to the subscribers of this process: the whole bus in embedded mode, and
    the local half of `bot.fanout.RedisFanout` (one Redis subscriber per process)."""

    def __init__(
        self, buffer: int = QUEUE_LIMIT, on_change: Callable[[], None] | None = None
    ) -> None:
        self._buffer = buffer
        # called when a channel gains or loses subscribers (Redis re-syncs its SUBSCRIBEs)
        self._on_change = on_change
        self._subscribers: dict[str, set[_Subscription]] = {}

    async def publish(self, channel: str, data: dict[str, Any]) -> None:
        self.deliver(channel, data)

    def deliver(self, channel: str, data: dict[str, Any]) -> None:
        """Hand `data` to every local subscriber of `channel` without waiting."""
        for subscription in list(self._subscribers.get(channel, ())):
            subscription.offer(data)

    def subscribe(self, channel: str) -> _Subscription:
        subscription = _Subscription(self, channel, self._buffer)
        self._subscribers.setdefault(channel, set()).add(subscription)
        if self._on_change is not None:
            self._on_change()
        return subscription

    def discard(self, channel: str, subscription: _Subscription) -> None:
        subscribers = self._subscribers.get(channel, set())
        subscribers.discard(subscription)
        if not subscribers:
            self._subscribers.pop(channel, None)
        if self._on_change is not None:
            self._on_change()

    def channels(self) -> set[str]:
        """Channels with at least one subscriber."""
        return set(self._subscribers)

    async def close(self) -> None:
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.offer(None)


async def notify_message(bus: LiveBus, db: Database, message_ids: Iterable[int]) -> None:
    """Tell open consoles about new or changed messages (call after the commit)."""
    ids = list(message_ids)
    if not ids:
        return
    async with db.reading() as s:
        rows = (
            await s.execute(
                select(
                    Message.id,
                    Message.conversation_id,
                    Message.direction,
                    Message.status,
                    Conversation.assignee_id,
                    StaffUser.team_id,
                    Customer.display_name,
                    Conversation.last_preview,
                    Conversation.unread_count,
                )
                .join(Conversation, Conversation.id == Message.conversation_id)
                .join(Customer, Customer.id == Conversation.customer_id)
                .outerjoin(StaffUser, StaffUser.id == Conversation.assignee_id)
                .where(Message.id.in_(ids))
            )
        ).all()
    for mid, conv_id, direction, status, assignee, team, name, preview, unread in rows:
        await bus.publish(
            CONSOLE_CHANNEL,
            {
                "type": "message",
                "message_id": mid,
                "conversation_id": conv_id,
                "direction": direction,
                "status": status,
                "assignee_id": assignee,
                "team_id": team,
                "customer_name": name,
                "preview": preview,
                "unread": unread,
            },
        )


def pipeline_hook(bus: LiveBus, db: Database) -> Callable[[str, int], Awaitable[None]]:
    """An `after_commit` hook for bot.pipeline.Pipeline: publishes processed messages."""

    async def hook(kind: str, item_id: int) -> None:
        if kind == "message":
            await notify_message(bus, db, [item_id])

    return hook


def visible_to(viewer: Viewer, event: dict[str, Any]) -> bool:
    return can_view_assigned(viewer, event.get("assignee_id"), event.get("team_id"))


async def stream_events(request: web.Request, bus: LiveBus, viewer: Viewer) -> web.StreamResponse:
    """text/event-stream of the events this viewer may see, with heartbeats."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
        }
    )
    await response.prepare(request)
    await response.write(b"retry: 3000\n\n")
    events = bus.subscribe(CONSOLE_CHANNEL)
    pending: asyncio.Task[dict[str, Any]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_SECONDS)
            if not done:
                await response.write(b": keep-alive\n\n")
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                break
            finally:
                pending = None
            if visible_to(viewer, event):
                payload = json.dumps(event, ensure_ascii=False)
                await response.write(f"event: {event['type']}\ndata: {payload}\n\n".encode())
    except ConnectionResetError:
        log.debug("live stream closed by the browser of staff %s", viewer.staff_id)
    finally:
        if pending is not None:
            pending.cancel()
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
    return response
