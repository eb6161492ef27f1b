"""Wake-ups for pollers: a kf_msg_or_event or msgaudit_notify callback wakes the poller
of that kf account / archive at once — in this process through an asyncio.Event, in
other processes through a SharedState key the waiting poller watches."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from channels.state import SharedState

_events: dict[tuple[int, str], asyncio.Event] = {}
WATCH_INTERVAL = 1.0  # how often a waiting poller looks at the shared key


def _event(name: str) -> asyncio.Event:
    key = (id(asyncio.get_running_loop()), name)
    event = _events.get(key)
    if event is None:
        event = _events[key] = asyncio.Event()
    return event


def _key(name: str) -> str:
    return f"wecom:wake:{name}"


async def signal(state: SharedState, name: str) -> None:
    """Wake whoever waits on `name`, here or in another process."""
    await state.set(_key(name), uuid.uuid4().hex, ttl=3600)
    _event(name).set()


async def wait(state: SharedState, name: str, max_wait: float) -> None:
    """Return on a signal for `name` or after `max_wait` seconds."""
    event = _event(name)
    if event.is_set():
        event.clear()
        return
    seen = await state.get(_key(name))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    while (remaining := deadline - loop.time()) > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=min(WATCH_INTERVAL, remaining))
        if event.is_set():
            event.clear()
            return
        if await state.get(_key(name)) != seen:
            return
