"""Composition root: builds the services from settings and runs the process's roles.

Roles (issue 10): `web` (callbacks + console, stateless), `worker` (pipeline handlers,
outbox dispatch, pollers), `scheduler`. `crmbot run` is all three in one process.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.exc import DBAPIError

from admin_web.live import InProcessBus, LiveBus, notify_message
from autoreply.settings import AutoReplySettings
from broadcasts.audience import AudienceRegistry
from broadcasts.policy import PolicyRegistry
from broadcasts.tasks import TaskChannels
from channels.base import ChannelContext, PullAdapter
from channels.email.unsubscribe import derive_key
from channels.email.unsubscribe import routes as unsubscribe_routes
from channels.media import MediaStore
from channels.registry import AdapterRegistry, default_registry
from channels.state import MemoryState, SharedState
from channels.wecom.codes.service import CodeError, CodeService
from channels.wecom.group_send import GroupSends
from conversations.db import Database, create_engine
from conversations.models import DeadLetter
from conversations.search import catch_up

from .accounts import AccountDirectory
from .audiences import register_tagging_audiences
from .callbacks import CallbackRoutes, callbacks_first
from .config import Settings
from .fanout import RedisFanout
from .ingest import IngestBatcher
from .leader import Lease, serve_as_leader
from .metrics import LEADER, MetricsEndpoint, outbox_refresher, queue_refresher
from .outbox import OutboxDispatcher
from .pipeline import INBOUND_TOPIC, Pipeline
from .pollers import run_poller
from .queue import InProcessQueue, WorkQueue
from .scheduler import broadcast_settings, build_engine, build_throttle, run_scheduler
from .secrets import SecretBox
from .send_failures import dispatcher_listener
from .supervisor import Supervisor
from .wecom_group_broadcasts import register_group_audience
from .wecom_tasks import KIND as WECOM_TASK_KIND
from .wecom_tasks import WeComGroupSendTasks, WeComTaskControls
from .wiring import build_handlers, console_nav

log = logging.getLogger(__name__)


class Role(enum.StrEnum):
    WEB = "web"
    WORKER = "worker"
    SCHEDULER = "scheduler"


ALL_ROLES = frozenset(Role)


@dataclass
class Services:
    settings: Settings
    db: Database
    queue: WorkQueue
    state: SharedState
    http: aiohttp.ClientSession
    media: MediaStore
    registry: AdapterRegistry
    secrets: SecretBox
    accounts: AccountDirectory
    pipeline: Pipeline
    dispatcher: OutboxDispatcher
    supervisor: Supervisor
    roles: frozenset[Role]
    policies: PolicyRegistry = field(default_factory=PolicyRegistry)
    audiences: AudienceRegistry = field(
        default_factory=lambda: register_group_audience(
            register_tagging_audiences(AudienceRegistry())
        )
    )
    # broadcasts to 客户联系 customers become WeCom 企业群发 tasks (one per salesperson)
    broadcast_tasks: TaskChannels = field(
        default_factory=lambda: TaskChannels({WECOM_TASK_KIND: WeComGroupSendTasks()})
    )
    extras: dict[str, Any] = field(default_factory=dict)  # sandbox simulators, …

    async def close(self) -> None:
        await self.supervisor.shutdown()
        await self.accounts.close_adapters()
        closer = getattr(self.state, "close", None)
        if closer is not None:  # RedisState holds a connection pool
            await closer()
        await self.queue.close()
        await self.http.close()
        await self.db.dispose()


async def _dead_letter_sink(db: Database) -> Any:
    async def sink(topic: str, item: str, error: str, attempts: int) -> None:
        async with db.transaction() as s:
            s.add(DeadLetter(topic=topic, item=item, error=error[:4000], attempts=attempts))
        log.error("dead-lettered %s item=%s after %d attempts: %s", topic, item, attempts, error)

    return sink


async def build_services(
    settings: Settings,
    roles: frozenset[Role] = ALL_ROLES,
    *,
    api_base_overrides: dict[str, str] | None = None,
) -> Services:
    db = Database(
        create_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    )
    sink = await _dead_letter_sink(db)
    queue: WorkQueue
    state: SharedState
    if settings.redis_url:
        from .redis_queue import RedisStreamQueue, queue_options
        from .redis_state import RedisState

        queue = RedisStreamQueue.from_url(
            settings.redis_url, dead_letter=sink, **queue_options(settings.section("redis"))
        )
        state = RedisState.from_url(settings.redis_url)
    else:
        queue = InProcessQueue(dead_letter=sink, concurrency=64)  # lets the pipeline batch
        state = MemoryState()
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    media = MediaStore(Path(settings.data_dir) / "media")
    registry = default_registry()
    secrets = SecretBox(settings.secret_key)
    ctx = ChannelContext(
        http=http,
        state=state,
        media=media,
        public_url=settings.public_url,
        api_base_overrides=dict(api_base_overrides or {}),
    )
    accounts = AccountDirectory(
        db,
        registry,
        ctx,
        secrets,
        installation_secrets={"unsubscribe_key": derive_key(settings.secret_key).hex()},
    )
    # per-account send rate (`rate_per_second` in the account config) gates the dispatcher
    dispatcher = OutboxDispatcher(db, accounts, gates=[build_throttle(accounts, state)])

    async def wake_dispatcher(_kind: str, _ids: Sequence[int]) -> None:
        dispatcher.wake()

    # live updates for the console: in-process, or Redis pub/sub across web processes
    live: LiveBus = InProcessBus()
    redis_client = getattr(state, "redis", None)
    if redis_client is not None:
        live = RedisFanout(redis_client)

    async def publish_status(_outbox_id: int, message_id: int | None, _status: str) -> None:
        if message_id is not None:
            await notify_message(live, db, [message_id])

    async def notify_processed(kind: str, ids: Sequence[int]) -> None:
        if kind == "message":  # one console read per processed batch
            await notify_message(live, db, ids)

    dispatcher.listeners.append(publish_status)
    dispatcher.listeners.append(dispatcher_listener(db))  # kf refusals → hand-off
    pipeline = Pipeline(
        db,
        queue,
        registry,
        build_handlers(
            AutoReplySettings.from_section(settings.section("autoreply")), tz=settings.tz
        ),
        after_batch=[wake_dispatcher, notify_processed],
    )
    services = Services(
        settings=settings,
        db=db,
        queue=queue,
        state=state,
        http=http,
        media=media,
        registry=registry,
        secrets=secrets,
        accounts=accounts,
        pipeline=pipeline,
        dispatcher=dispatcher,
        supervisor=Supervisor(),
        roles=roles,
    )
    services.extras["live"] = live
    return services


async def start_background(services: Services) -> None:
    """Start the loops of this process's roles: the worker's pipeline consumers,
    dispatcher, pollers and sweeper; the scheduler's broadcast engine."""
    await _start_loops(services)


def settle_heap() -> None:
    """After start-up: what it built (jieba's dictionary, ORM mappings, auto-reply
    indexes) lives as long as the process, so it leaves the collector's sight and full
    collections stop walking it (they paused the loop for 100-200 ms under load, on a
    callback's latency). For a process's own start only: frozen objects are never freed."""
    gc.collect()
    gc.freeze()


async def _start_loops(services: Services) -> None:
    sup = services.supervisor
    if Role.SCHEDULER in services.roles:
        engine = build_engine(
            services.db,
            services.settings,
            on_queued=[services.dispatcher.wake],
            policies=services.policies,
            audiences=services.audiences,
            tasks=services.broadcast_tasks,
        )
        redis = getattr(services.state, "redis", None)
        if redis is None:
            sup.spawn("broadcasts", lambda stop: run_scheduler(engine, stop))
        else:
            # several schedulers: one leads (fencing-token lease), the others stand by;
            # fire-once still rests on the (broadcast, fire_time) unique row
            async def lead(stop: asyncio.Event) -> None:
                async def work(_lease: Lease) -> None:
                    LEADER.labels(name="scheduler").set(1)
                    try:
                        await run_scheduler(engine, stop)
                    finally:
                        LEADER.labels(name="scheduler").set(0)

                await serve_as_leader(redis, "scheduler", work, stop)

            sup.spawn("broadcasts", lead)
        from .jobs import nightly_tagging

        sup.spawn("tagging.nightly", lambda stop: nightly_tagging(services, stop))
    if Role.WORKER not in services.roles:
        return
    await services.pipeline.warm_up()
    await services.pipeline.recover()
    sup.spawn(
        "pipeline",
        lambda stop: services.queue.consume(INBOUND_TOPIC, services.pipeline.process, stop),
    )
    sup.spawn("outbox", services.dispatcher.run)

    # [pipeline] recovery_seconds: how often, and after how long, a lost wake-up is redone
    every = float(services.settings.section("pipeline").get("recovery_seconds", 60))

    async def sweeper(stop: asyncio.Event) -> None:
        # re-publish rows whose wake-up was lost (queue down at ingest, crash)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except TimeoutError:
                try:
                    await services.pipeline.recover(older_than_seconds=every)
                except (ConnectionError, OSError, DBAPIError) as exc:
                    # queue or store down: the rows wait in the store for the next round
                    log.warning("recovery sweep skipped: %r", exc)

    sweep_redis = getattr(services.state, "redis", None)
    if sweep_redis is None:
        sup.spawn("recovery-sweeper", sweeper)
    else:
        # several workers: one sweeps (re-publishing from each would multiply wake-ups)
        async def lead_sweeps(stop: asyncio.Event) -> None:
            async def work(_lease: Lease) -> None:
                await sweeper(stop)

            await serve_as_leader(sweep_redis, "recovery-sweeper", work, stop)

        sup.spawn("recovery-sweeper", lead_sweeps)
    from .jobs import every as run_every
    from .jobs import resume_contact_syncs, worker_jobs

    if not services.settings.section("jobs").get("enabled", True):
        return  # [jobs] enabled = false: tests drive the jobs themselves
    for name, (seconds, job) in worker_jobs(services).items():
        sup.spawn(f"job:{name}", lambda stop, n=name, s=seconds, j=job: run_every(n, s, j, stop))  # type: ignore[misc]

    from .jobs import run_leader_jobs

    # corp-tag sync and push: one worker at a time (a Redis lease when scaled)
    sup.spawn("jobs:wecom.leader", lambda stop: run_leader_jobs(services, stop))

    async def contact_sync_once(stop: asyncio.Event) -> None:
        await resume_contact_syncs(services)
        await stop.wait()  # done for this run; stays "alive" for the supervisor

    sup.spawn("wecom.contact_sync", contact_sync_once)
    # index what was written outside the pipeline (auto-replies, broadcasts, console)
    sup.spawn(
        "job:search.catch_up",
        lambda stop: run_every("search.catch_up", 45.0, lambda: catch_up(services.db), stop),
    )
    for loaded in await services.accounts.all_enabled():
        if isinstance(loaded.adapter, PullAdapter):
            adapter: PullAdapter = loaded.adapter
            account_id = loaded.id
            # IMAP renews IDLE itself; others wake on callbacks or poll at this pace
            idle = float(getattr(adapter, "poll_idle_seconds", 30.0))
            sup.spawn(
                f"poller:{account_id}",
                lambda stop, a=adapter, i=account_id, w=idle: run_poller(  # type: ignore[misc]
                    services.db, i, a, services.pipeline.publish, stop, idle_wait=w
                ),
            )


def web_app(services: Services) -> web.Application:
    """The aiohttp application of the web role: callbacks, console, health."""
    app = web.Application(client_max_size=services.settings.max_body_bytes)
    batcher = IngestBatcher(services.db, pressure=services.pipeline.pressure)
    services.extras["ingest"] = batcher
    callbacks = CallbackRoutes(batcher.record, services.accounts, services.pipeline.publish)
    app.router.add_routes(callbacks.routes())
    # one-click unsubscribe (RFC 8058): public, no session, no CSRF (mail clients post it)
    app.router.add_routes(unsubscribe_routes(services.db, derive_key(services.settings.secret_key)))
    services.extras["callbacks"] = callbacks

    async def healthz(_request: web.Request) -> web.Response:
        from sqlalchemy import text

        try:
            async with services.db.reading() as s:
                await s.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001  (health reports, never raises)
            return web.json_response({"status": "unavailable", "store": repr(exc)}, status=503)
        return web.json_response(
            {"status": "ok", "roles": sorted(services.roles), "tasks": services.supervisor.names()}
        )

    app.router.add_get("/healthz", healthz)
    metrics = MetricsEndpoint(
        [queue_refresher(services.queue, [INBOUND_TOPIC]), outbox_refresher(services.db)],
        token=str(services.settings.section("metrics").get("token") or "") or None,
    )
    app.router.add_get("/metrics", metrics.handle)
    from admin_web import autoreply_views, group_views
    from admin_web.app import setup_console
    from admin_web.broadcast_panels import customer_broadcasts_panel
    from admin_web.broadcast_views import BROADCAST_CONSOLE_KEY, BroadcastConsole
    from admin_web.broadcast_views import routes as broadcast_routes
    from admin_web.code_views import CODES_CONSOLE_KEY
    from admin_web.code_views import dashboard_panel as code_dashboard_panel
    from admin_web.code_views import routes as code_routes
    from admin_web.deps import ConnectionResult, ConsoleDeps
    from admin_web.sidebar.views import build_routes as sidebar_routes
    from admin_web.tagging_panels import (
        TagInboxFilter,
        customer_tags_panel,
        customer_value_panel,
    )
    from admin_web.tagging_views import routes as tagging_routes
    from tagging.config import TaggingSettings

    from .sidebar_wiring import sidebar_services

    async def check_connection(account_id: int) -> ConnectionResult:
        try:
            loaded = await services.accounts.by_id(account_id)
        except (ValueError, KeyError, TypeError) as exc:  # the channel's own config check
            return ConnectionResult(False, f"设置有误 (settings incomplete): {exc}")
        if loaded is None:
            return ConnectionResult(
                False, "账号不存在或类型未知 (account missing or of an unknown kind)"
            )
        result = await loaded.adapter.check_connection()
        return ConnectionResult(result.ok, result.message)

    from channels.wecom.groups.handover import WeComGroupTransfer
    from channels.wecom.handover import WeComCustomerTransfer

    from .handover import HandoverTransfers
    from .jobs import wecom_api_for

    # the console's hand-over moves WeCom customers, then their customer groups
    api_for = wecom_api_for(services.accounts)
    handover = HandoverTransfers(
        services.db,
        [WeComCustomerTransfer(services.db, api_for), WeComGroupTransfer(services.db, api_for)],
    )
    services.extras["handover"] = handover
    labels = {
        k: (services.registry.spec(k).label_zh, services.registry.spec(k).label_en)
        for k in services.registry.kinds()
    }
    setup_console(
        app,
        ConsoleDeps(
            db=services.db,
            secret_key=services.settings.secret_key,
            public_url=services.settings.public_url,
            state=services.state,
            wake_outbox=services.dispatcher.wake,
            channel_labels=labels,
            simulator=services.extras.get("simulator"),
            extra_routes=[
                tagging_routes,
                broadcast_routes,
                code_routes,
                autoreply_views.build_routes(
                    AutoReplySettings.from_section(services.settings.section("autoreply"))
                ),
                sidebar_routes(sidebar_services(services)),
                group_views.routes,
            ],
            dashboard_panels=[group_views.dashboard_panel, code_dashboard_panel],
            nav=console_nav(),
            live=services.extras["live"],
            media=services.media,
            seal_secrets=services.secrets.seal,
            forget_account=services.accounts.forget,
            check_connection=check_connection,
            customer_panels=[
                customer_tags_panel,
                customer_value_panel(
                    TaggingSettings.from_section(services.settings.section("tagging")).value
                ),
                customer_broadcasts_panel,
            ],
            inbox_filters=[TagInboxFilter()],
            customer_transfer=handover,
        ),
    )
    app[group_views.GROUPS_CONSOLE_KEY] = group_views.GroupsConsole(api_for)
    app[BROADCAST_CONSOLE_KEY] = BroadcastConsole(
        services.policies,
        services.audiences,
        broadcast_settings(services.settings),
        tasks=services.broadcast_tasks,
        task_controls=WeComTaskControls(services.db, GroupSends(services.db, api_for)),
    )
    app.middlewares.insert(0, callbacks_first)
    app[CODES_CONSOLE_KEY] = CodeService(
        services.db,
        wecom_api_for(
            services.accounts, lambda _id: CodeError("不是企业微信账号 (not a WeCom account)")
        ),
        services.settings.tz,
    )
    return app
