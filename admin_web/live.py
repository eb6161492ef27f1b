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
    async def publish(self, channel: str, data: dict[str, Any]) -> None: ...

    def subscribe(self, channel: str) -> AsyncIterator[dict[str, Any]]: ...


class _Subscription:
    """Registered on creation, so nothing published after `subscribe()` is missed."""

    def __init__(self, owner: set[asyncio.Queue[dict[str, Any] | None]]) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_LIMIT)
        owner.add(self._queue)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        item = await self._queue.get()
        if item is None:
            await self.aclose()
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self._owner.discard(self._queue)


class InProcessBus:
    """Fan-out to the subscribers of this process (embedded mode)."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any] | None]]] = {}

    async def publish(self, channel: str, data: dict[str, Any]) -> None:
        for queue in list(self._queues.get(channel, ())):
            if queue.full():
                # a stalled browser loses old events, never blocks the publisher
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(data)

    def subscribe(self, channel: str) -> _Subscription:
        return _Subscription(self._queues.setdefault(channel, set()))

    def close(self) -> None:
        """End every subscription (application shutdown)."""
        for queues in self._queues.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)


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
