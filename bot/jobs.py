"""Periodic jobs: WeCom media downloads, contact refreshes and syncs, group-send and
transfer polling (worker role); nightly tagging work (scheduler role).

Every job is idempotent and resumable from the store, so running it on several workers
at once wastes a little work but never doubles anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta

from channels.media import MediaStore
from channels.wecom import contact_sync, media, transfer
from channels.wecom.api import WeComApi
from channels.wecom.codes.service import reconcile_creating, refresh_rotas
from channels.wecom.group_send import GroupSends
from channels.wecom.groups import stats as groups_stats
from channels.wecom.groups import sync as groups_sync
from conversations.db import utcnow
from tagging.config import TaggingSettings
from tagging.jobs import nightly

from . import wecom_tag_sync
from .accounts import AccountDirectory
from .leader import Lease, serve_as_leader
from .runtime import Services

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


async def every(
    name: str, seconds: float, job: Job, stop: asyncio.Event, *, first_delay: float = 5.0
) -> None:
    """Run `job` every `seconds` until `stop`; a failure is logged and retried next time."""
    delay = first_delay
    while not stop.is_set():
        stopper = asyncio.ensure_future(stop.wait())
        _done, _pending = await asyncio.wait({stopper}, timeout=delay)
        stopper.cancel()
        if stop.is_set():
            return
        try:
            result = await job()
            if result:
                log.info("job %s: %s", name, result)
        except Exception:  # noqa: BLE001  (a provider or store hiccup must not end the job)
            log.exception("job %s failed; next run in %.0fs", name, seconds)
        delay = seconds


def wecom_api_for(
    accounts: AccountDirectory,
    error: Callable[[int], Exception] = lambda aid: LookupError(
        f"account {aid} has no WeCom API client"
    ),
) -> Callable[[int], Awaitable[WeComApi]]:
    """account id → the WeCom API client of that account's adapter (else `error(id)`)."""

    async def api_for(account_id: int) -> WeComApi:
        loaded = await accounts.by_id(account_id)
        api = getattr(loaded.adapter, "api", None) if loaded is not None else None
        if not isinstance(api, WeComApi):
            raise error(account_id)
        return api

    return api_for


def worker_jobs(services: Services) -> dict[str, tuple[float, Job]]:
    """name → (interval seconds, job) for the worker role."""
    accounts = services.accounts
    api_for = wecom_api_for(accounts)
    store: MediaStore = services.media

    async def source_for(account_id: int) -> media.MediaSource | None:
        loaded = await accounts.by_id(account_id)
        adapter = loaded.adapter if loaded is not None else None
        return adapter if isinstance(adapter, media.MediaSource) else None

    def per_contact_account(step: Callable[[int, WeComApi], Awaitable[object]]) -> Job:
        """`step` on every enabled 客户联系 account; what each did, for the log."""

        async def job() -> dict[int, object]:
            done: dict[int, object] = {}
            for loaded in await accounts.all_enabled():
                if loaded.kind == "wecom.contact":
                    result = await step(loaded.id, await api_for(loaded.id))
                    if result:
                        done[loaded.id] = result
            return done

        return job

    db = services.db

    group_sends = GroupSends(services.db, api_for)
    return {
        "wecom.media": (15.0, lambda: media.fetch_pending_media(services.db, source_for, store)),
        "wecom.contacts.refresh": (
            120.0,
            per_contact_account(lambda aid, api: contact_sync.refresh_marked(db, aid, api)),
        ),
        # 客户群: groups change_external_chat marked, a pass the console started, daily stats
        "wecom.groups.refresh": (
            120.0,
            per_contact_account(lambda aid, api: groups_sync.refresh_marked_groups(db, aid, api)),
        ),
        "wecom.groups.sync": (
            60.0,
            per_contact_account(lambda aid, api: groups_sync.continue_group_sync(db, aid, api)),
        ),
        "wecom.groups.stats": (
            6 * 3600.0,
            per_contact_account(lambda aid, api: groups_stats.fetch_recent(db, api, aid, days=2)),
        ),
        "wecom.group_sends.poll": (600.0, group_sends.poll_open),
        # 渠道活码: schedules move with the clock, daily limits reset at midnight
        "wecom.codes.rota": (300.0, lambda: refresh_rotas(services.db, services.settings.tz)),
        # a code reserved but left "creating" by a crash: completed from WeCom or freed
        "wecom.codes.reconcile": (300.0, lambda: reconcile_creating(services.db, api_for)),
        "wecom.transfers.poll": (
            3600.0,
            lambda: transfer.poll_open_transfers(services.db, api_for),
        ),
    }


def leader_jobs(services: Services) -> dict[str, tuple[float, Job]]:
    """Worker jobs that must not run on two workers at once (add_corp_tag would make a
    tag twice): run under a Redis lease when Redis is configured (bot/leader.py)."""
    jobs = wecom_tag_sync.tag_jobs(services.db, wecom_api_for(services.accounts))
    # [wecom] tag_sync_seconds / tag_push_seconds
    section = services.settings.section("wecom")
    return {
        "wecom.tags.sync": (float(section.get("tag_sync_seconds", 900)), jobs["wecom.tags.sync"]),
        "wecom.tags.push": (float(section.get("tag_push_seconds", 5)), jobs["wecom.tags.push"]),
    }


async def run_leader_jobs(services: Services, stop: asyncio.Event) -> None:
    """`leader_jobs` on this worker: alone, or while it holds the "wecom.jobs" lease."""

    async def work(lost: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for name, (seconds, job) in leader_jobs(services).items():
                group.create_task(every(name, seconds, job, lost))

    redis = getattr(services.state, "redis", None)
    if redis is None:
        await work(stop)
        return

    async def lead(lease: Lease) -> None:
        halt = asyncio.Event()

        async def relay() -> None:
            stopper = asyncio.ensure_future(stop.wait())
            loser = asyncio.ensure_future(lease.lost.wait())
            await asyncio.wait({stopper, loser}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            loser.cancel()
            halt.set()

        relay_task = asyncio.ensure_future(relay())
        try:
            await work(halt)
        finally:
            relay_task.cancel()

    await serve_as_leader(redis, "wecom.jobs", lead, stop)


async def resume_contact_syncs(services: Services) -> None:
    """At start: full 客户联系 and 客户群 syncs resume (or start, on first connect) per account."""
    for loaded in await services.accounts.all_enabled():
        if loaded.kind == "wecom.contact":
            try:
                api = await wecom_api_for(services.accounts)(loaded.id)
                report = await contact_sync.run_full_sync(services.db, loaded.id, api)
                log.info("contact sync account=%s: %s", loaded.id, report)
                groups = await groups_sync.run_group_sync(services.db, loaded.id, api)
                log.info("group sync account=%s: %s", loaded.id, groups)
            except Exception:  # noqa: BLE001  (WeCom unreachable at start: the next start resumes)
                log.exception("contact sync account=%s failed", loaded.id)


def next_local(at: time, now: datetime, tz: object) -> datetime:
    """The next occurrence of local wall time `at` after `now` (as UTC-aware)."""
    local = now.astimezone(tz)  # type: ignore[arg-type]  # a tzinfo
    candidate = datetime.combine(local.date(), at, tzinfo=local.tzinfo)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=local.tzinfo)
    return candidate


async def nightly_tagging(services: Services, stop: asyncio.Event, at: time = time(3, 0)) -> None:
    """Age brackets, RFM/ABC, profile rules and birthday reminders, daily at 03:00 local."""
    settings = TaggingSettings.from_section(services.settings.section("tagging"))
    while not stop.is_set():
        now = utcnow()
        wait = (
            next_local(at, now, services.settings.tz) - now.astimezone(services.settings.tz)
        ).total_seconds()
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stopper}, timeout=max(1.0, wait))
        stopper.cancel()
        if stop.is_set():
            return
        try:
            log.info(
                "nightly tagging: %s",
                await nightly(services.db, settings, utcnow(), services.settings.tz),
            )
        except Exception:  # noqa: BLE001  (tomorrow's run recomputes everything)
            log.exception("nightly tagging failed")
