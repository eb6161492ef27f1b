"""Mounts the console on the web role's aiohttp application."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import auth_views, inbox_views, sandbox_views
from .deps import DEPS_KEY, ConsoleDeps
from .i18n import gettext, ngettext
from .security import authenticate, csrf_protect, install_sessions, secure_headers

HERE = Path(__file__).parent


def _datetime(value: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not isinstance(value, datetime):
        return ""
    return value.astimezone(ZoneInfo("Asia/Shanghai")).strftime(fmt)


def setup_console(app: web.Application, deps: ConsoleDeps) -> None:
    app[DEPS_KEY] = deps
    install_sessions(app, deps.secret_key)
    app.middlewares.extend([secure_headers, authenticate, csrf_protect])
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        extensions=["jinja2.ext.i18n"],
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]  # added by the i18n extension
    env.filters["dt"] = _datetime
    app.router.add_routes(auth_views.routes)
    app.router.add_routes(inbox_views.routes)
    app.router.add_routes(sandbox_views.routes)
    for table in deps.extra_routes:
        app.router.add_routes(table)
    app.router.add_static("/static/", HERE / "static", name="static")
