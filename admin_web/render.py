"""Template rendering with the context every console page needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from conversations.queries import unread_total

from .deps import DEPS_KEY
from .i18n import current_locale
from .security import USER_KEY, VIEWER_KEY, csrf_token_for


async def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    session = await get_session(request)
    deps = request.app[DEPS_KEY]
    ctx: dict[str, Any] = {
        "csrf": csrf_token_for(session),
        "locale": current_locale.get(),
        "user": request.get(USER_KEY),
        "sandbox": deps.simulator is not None,
        "path": request.path,
        "unread_total": 0,
    }
    viewer = request.get(VIEWER_KEY)
    if viewer is not None:
        async with deps.db.reading() as s:
            ctx["unread_total"] = await unread_total(s, viewer)
    ctx.update(context or {})
    return aiohttp_jinja2.render_template(template, request, ctx, status=status)
