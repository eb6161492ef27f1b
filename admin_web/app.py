"""Mounts the console and the JSON API on the web role's aiohttp application."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import (
    api,
    audit_views,
    auth_views,
    conversation_views,
    customer_views,
    inbox_views,
    material_views,
    me_views,
    sandbox_views,
    search_views,
    settings_views,
    stats_views,
    users_views,
)
from .deps import DEPS_KEY, ConsoleDeps
from .i18n import gettext, ngettext
from .policy import enforce_policy
from .security import (
    audit_denials,
    authenticate,
    authenticate_api,
    csrf_protect,
    install_sessions,
    secure_headers,
)

HERE = Path(__file__).parent
BEIJING = ZoneInfo("Asia/Shanghai")
CONSOLE_ROUTES = (
    auth_views.routes,
    inbox_views.routes,
    conversation_views.routes,
    customer_views.routes,
    search_views.routes,
    stats_views.routes,
    settings_views.routes,
    users_views.routes,
    me_views.routes,
    audit_views.routes,
    material_views.routes,
    sandbox_views.routes,
    api.routes,
)


def _datetime(value: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not isinstance(value, datetime):
        return ""
    return value.astimezone(BEIJING).strftime(fmt)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def setup_console(app: web.Application, deps: ConsoleDeps) -> None:
    app[DEPS_KEY] = deps
    install_sessions(app, deps.secret_key)
    app.middlewares.extend(
        [
            secure_headers,
            authenticate,
            authenticate_api,
            audit_denials,
            csrf_protect,
            enforce_policy,
        ]
    )
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        extensions=["jinja2.ext.i18n"],
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]  # added by the i18n extension
    env.filters["dt"] = _datetime
    env.filters["duration"] = _duration
    for table in CONSOLE_ROUTES:
        app.router.add_routes(table)
    for table in deps.extra_routes:
        app.router.add_routes(table)
    app.router.add_static("/static/", HERE / "static", name="static")

    async def close_live(_app: web.Application) -> None:
        # open event streams end, so shutdown does not wait for browsers
        await deps.live.close()

    app.on_shutdown.append(close_live)
