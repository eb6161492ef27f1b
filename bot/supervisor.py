"""Keeps background tasks referenced, restarts nothing silently, stops them gracefully."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Supervisor:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def spawn(
        self, name: str, factory: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    ) -> None:
        task = asyncio.get_running_loop().create_task(factory(self.stop), name=name)
        self._tasks[name] = task
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.stop.is_set():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background task %s died: %r", task.get_name(), exc, exc_info=exc)
        else:
            log.warning("background task %s returned early", task.get_name())

    def names(self) -> list[str]:
        return [n for n, t in self._tasks.items() if not t.done()]

    async def shutdown(self, grace: float = 10.0) -> None:
        """Let in-flight work finish (loops check `stop` between items), then cancel."""
        self.stop.set()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            log.warning("task %s did not stop within %.0fs; cancelling", task.get_name(), grace)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
