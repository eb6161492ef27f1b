"""The loop that drives pull-based adapters (IMAP, 微信客服 sync_msg, message archive)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from channels.base import PullAdapter, PullPage
from conversations.actions import RecordResult, record_inbound, save_cursor
from conversations.db import Database
from conversations.models import ChannelAccount, ChannelCursor

log = logging.getLogger(__name__)

Publish = Callable[[RecordResult], Awaitable[None]]


async def load_cursors(db: Database, account_id: int) -> dict[str, str]:
    async with db.reading() as session:
        rows = await session.scalars(
            select(ChannelCursor).where(ChannelCursor.account_id == account_id)
        )
        return {row.name: row.value for row in rows}


async def store_pull_page(db: Database, account_id: int, page: PullPage) -> RecordResult:
    """Store a page's items and move its cursor in one transaction (DESIGN.md invariant 2)."""
    async with db.transaction() as session:
        account = await session.get(ChannelAccount, account_id)
        if account is None:
            raise LookupError(f"channel account {account_id} is gone")
        result = await record_inbound(session, account, page.items)
        if page.cursor is not None:
            await save_cursor(session, account_id, page.cursor_name, page.cursor)
    return result


async def run_poller(
    db: Database,
    account_id: int,
    adapter: PullAdapter,
    publish: Publish,
    stop: asyncio.Event,
    *,
    idle_wait: float = 30.0,
    max_backoff: float = 300.0,
) -> None:
    """Pull pages until `stop`; a failure backs off exponentially and never loses a cursor."""
    failures = 0
    while not stop.is_set():
        try:
            page = await adapter.pull(await load_cursors(db, account_id))
            result = await store_pull_page(db, account_id, page)
            await publish(result)
            failures = 0
            if page.items or page.cursor is not None:
                log.info(
                    "pulled account=%s cursor=%s new=%d dup=%d",
                    account_id,
                    page.cursor_name,
                    len(result.message_ids) + len(result.event_ids),
                    result.duplicates,
                )
            if page.has_more:
                continue
            waiter = asyncio.ensure_future(adapter.wait_for_new(idle_wait))
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (waiter, stopper):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001  (a poller must outlive provider and network faults)
            failures += 1
            delay = min(max_backoff, 2.0**failures)
            log.exception(
                "poller account=%s failed (%d in a row); retry in %.0fs",
                account_id,
                failures,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
