"""Dashboards and per-salesperson statistics for admins and managers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from conversations.stats import (
    days_between,
    messages_per_day,
    response_time_per_day,
    staff_statistics,
)

from .charts import line, stacked_bars
from .deps import DEPS_KEY
from .forms import day_end, day_start
from .i18n import current_locale, gettext
from .policy import MANAGERS, allow
from .render import panels, render
from .security import viewer_of

routes = web.RouteTableDef()
DEFAULT_DAYS = 14


def _period(request: web.Request) -> tuple[datetime, datetime]:
    until = day_end(request.query.get("to")) or datetime.now(UTC)
    since = day_start(request.query.get("from")) or until - timedelta(days=DEFAULT_DAYS)
    return since, until


@routes.get("/dashboard")
@allow(MANAGERS)
async def dashboard(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    since, until = _period(request)
    async with deps.db.reading() as s:
        per_kind = await messages_per_day(s, since, until)
        response = await response_time_per_day(s, since, until)
    days = days_between(since, until)
    labels = [d.strftime("%m-%d") for d in days]
    zh = current_locale.get() == "zh"
    series = {
        (deps.channel_labels.get(kind) or (kind, kind))[0 if zh else 1]: [
            counts.get(d, 0) for d in days
        ]
        for kind, counts in sorted(per_kind.items())
    }
    minutes = [response[d] / 60 if d in response else None for d in days]
    return await render(
        request,
        "dashboard.html",
        {
            "messages_chart": stacked_bars(labels, series, gettext("Messages per day")),
            "response_chart": line(labels, minutes, gettext("Average response time"), "m"),
            "total_messages": sum(sum(v) for v in series.values()),
            "since": since,
            "until": until,
            "panels": panels([await p(request, since, until) for p in deps.dashboard_panels]),
        },
    )


@routes.get("/stats/staff")
@allow(MANAGERS)
async def staff_stats(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    since, until = _period(request)
    async with deps.db.reading() as s:
        rows = await staff_statistics(s, viewer_of(request), since, until)
    return await render(request, "staff_stats.html", {"rows": rows, "since": since, "until": until})
