"""Prometheus metrics (issue 10) and the aiohttp handler that serves them at /metrics.

Counters and histograms are updated where things happen (queue, pipeline, dispatcher,
callbacks). Gauges that describe stored state (queue depth and lag, outbox backlog,
broadcast progress) are refreshed just before each scrape by async "refreshers", so a
scrape always shows the state of the store and of Redis, not a stale copy.

Every process has its own registry contents; in a scaled install Prometheus scrapes
each web, worker and scheduler process (`metrics_app` serves a bare /metrics for roles
without a console). Metric names follow the Prometheus naming guide (unit suffixes,
`_total` counters).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select

from conversations.db import Database
from conversations.models import ChannelAccount, OutboxItem

log = logging.getLogger(__name__)

# Handlers and sends are fast on the happy path and bounded by provider timeouts.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

QUEUE_DEPTH = Gauge(
    "crmbot_queue_depth", "Items waiting or in progress in a work queue topic.", ["topic"]
)
QUEUE_LAG = Gauge(
    "crmbot_queue_lag_seconds", "Age of the oldest item still in a work queue topic.", ["topic"]
)
QUEUE_ITEM_SECONDS = Histogram(
    "crmbot_queue_item_seconds",
    "Time a consumer spent on one queue item.",
    ["topic"],
    buckets=_LATENCY_BUCKETS,
)
QUEUE_ITEMS = Counter(
    "crmbot_queue_items_total", "Queue items handled, by outcome.", ["topic", "outcome"]
)
QUEUE_RECLAIMED = Counter(
    "crmbot_queue_reclaimed_total",
    "Items taken over from a consumer that crashed or stalled.",
    ["topic"],
)
DEAD_LETTERS = Counter(
    "crmbot_dead_letters_total", "Items given up on after their last attempt.", ["topic"]
)
HANDLER_SECONDS = Histogram(
    "crmbot_handler_seconds",
    "Time one pipeline handler took for one message.",
    ["handler"],
    buckets=_LATENCY_BUCKETS,
)
CALLBACK_SECONDS = Histogram(
    "crmbot_callback_seconds",
    "Provider callback handling time, verify to acknowledgement.",
    ["kind", "status"],
    buckets=_LATENCY_BUCKETS,
)
OUTBOX_BACKLOG = Gauge(
    "crmbot_outbox_backlog",
    "Outbox rows not yet finished, by channel kind and status.",
    ["channel", "status"],
)
OUTBOX_OLDEST = Gauge(
    "crmbot_outbox_oldest_seconds", "Age of the oldest unfinished outbox row.", ["channel"]
)
SENDS = Counter(
    "crmbot_sends_total",
    "Outbound send attempts, by channel kind and result.",
    ["channel", "result"],
)
SEND_ERRORS = Counter(
    "crmbot_send_errors_total",
    "Failed or retried sends, by channel kind and provider error code.",
    ["channel", "code"],
)
SEND_SECONDS = Histogram(
    "crmbot_send_seconds", "Provider send call duration.", ["channel"], buckets=_LATENCY_BUCKETS
)
BROADCAST_RECIPIENTS = Gauge(
    "crmbot_broadcast_recipients",
    "Recipients of a running broadcast, by state (pending/queued/sent/delivered/failed/skipped).",
    ["broadcast", "state"],
)
LEADER = Gauge("crmbot_leader", "1 while this process holds the named leadership.", ["name"])

# Outbox statuses that mean "finished"; everything else is backlog.
OUTBOX_DONE = ("sent", "delivered", "failed", "cancelled")

Refresher = Callable[[], Awaitable[None]]


def record_send(channel: str, result: str, code: str | None = None) -> None:
    """Count one send attempt; failures and retries also count under their provider code."""
    SENDS.labels(channel=channel, result=result).inc()
    if result != "sent" and result != "ok":
        SEND_ERRORS.labels(channel=channel, code=code or "none").inc()


def set_broadcast_progress(broadcast_id: int | str, counts: Mapping[str, int]) -> None:
    """Publish a broadcast's per-state recipient counts (call as it progresses)."""
    for state, count in counts.items():
        BROADCAST_RECIPIENTS.labels(broadcast=str(broadcast_id), state=state).set(count)


def clear_broadcast_progress(broadcast_id: int | str, states: list[str]) -> None:
    """Drop a finished broadcast's series so label cardinality stays bounded."""
    for state in states:
        try:
            BROADCAST_RECIPIENTS.remove(str(broadcast_id), state)
        except KeyError:
            continue


class MeasurableQueue(Protocol):
    async def depth(self, topic: str) -> int: ...


def queue_refresher(queue: MeasurableQueue, topics: list[str]) -> Refresher:
    """Refresh depth (and lag, where the queue can tell) for each topic before a scrape."""

    async def refresh() -> None:
        for topic in topics:
            QUEUE_DEPTH.labels(topic=topic).set(await queue.depth(topic))
            lag = getattr(queue, "lag", None)  # only the Redis queue can date its items
            if lag is not None:
                QUEUE_LAG.labels(topic=topic).set(await lag(topic))

    return refresh


def outbox_refresher(db: Database) -> Refresher:
    """Refresh the outbox backlog gauges from the store (one grouped query)."""

    async def refresh() -> None:
        now = datetime.now(UTC)
        async with db.reading() as session:
            rows = await session.execute(
                select(
                    ChannelAccount.kind,
                    OutboxItem.status,
                    func.count(),
                    func.min(OutboxItem.created_at),
                )
                .join(ChannelAccount, ChannelAccount.id == OutboxItem.account_id)
                .where(OutboxItem.status.not_in(OUTBOX_DONE))
                .group_by(ChannelAccount.kind, OutboxItem.status)
            )
            OUTBOX_BACKLOG.clear()
            OUTBOX_OLDEST.clear()
            oldest: dict[str, datetime] = {}
            for kind, status, count, first in rows:
                OUTBOX_BACKLOG.labels(channel=kind, status=status).set(count)
                if first is not None and (kind not in oldest or first < oldest[kind]):
                    oldest[kind] = first
            for kind, first in oldest.items():
                OUTBOX_OLDEST.labels(channel=kind).set(max(0.0, (now - first).total_seconds()))

    return refresh


class MetricsEndpoint:
    """aiohttp handler for GET /metrics: run the refreshers, then expose the registry.

    `token`, when set, must be presented as `Authorization: Bearer <token>`; the nginx
    config in deploy/ also keeps /metrics off the public side.
    """

    def __init__(
        self,
        refreshers: list[Refresher] | None = None,
        registry: CollectorRegistry = REGISTRY,
        token: str | None = None,
        refresh_timeout: float = 5.0,
    ) -> None:
        self.refreshers = list(refreshers or [])
        self.registry = registry
        self.token = token
        self.refresh_timeout = refresh_timeout

    def add(self, refresher: Refresher) -> None:
        self.refreshers.append(refresher)

    async def handle(self, request: web.Request) -> web.Response:
        if self.token is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                raise web.HTTPUnauthorized()
        for refresh in self.refreshers:
            try:
                await asyncio.wait_for(refresh(), self.refresh_timeout)
            except Exception:  # noqa: BLE001  (a down Redis/DB must not hide the other metrics)
                log.warning("metrics refresher %r failed", refresh, exc_info=True)
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def metrics_app(endpoint: MetricsEndpoint) -> web.Application:
    """A bare app serving /metrics, for `crmbot worker` and `crmbot scheduler`."""
    app = web.Application()
    app.router.add_get("/metrics", endpoint.handle)
    return app
