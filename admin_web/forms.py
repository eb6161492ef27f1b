"""Reading form and query values the same way in every view."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from conversations.access import AccessDenied

from .i18n import gettext

BEIJING = ZoneInfo("Asia/Shanghai")


def int_or_none(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def day_start(value: str | None) -> datetime | None:
    """A YYYY-MM-DD field as the start of that Beijing day, in UTC."""
    if not value:
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return None
    return datetime.combine(d, time(0), BEIJING).astimezone(UTC)


def day_end(value: str | None) -> datetime | None:
    start = day_start(value)
    return start + timedelta(days=1) if start else None


def denied(_exc: AccessDenied | None = None) -> web.HTTPForbidden:
    return web.HTTPForbidden(text=gettext("You may not do this."))
