"""The unified inbox and its live stream."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from conversations.access import Role
from conversations.models import ChannelAccount
from conversations.queries import InboxFilter, inbox

from .deps import DEPS_KEY
from .forms import int_or_none
from .live import stream_events
from .policy import ALL_ROLES, STAFF, allow
from .render import panels, render
from .security import viewer_of

routes = web.RouteTableDef()
SCOPES = ("all", "mine", "unassigned")


@routes.get("/")
@allow(ALL_ROLES)
async def home(request: web.Request) -> web.Response:
    # marketers have no inbox: they land on what the campaign packages add
    if viewer_of(request).role == Role.MARKETER:
        raise web.HTTPFound("/me")
    raise web.HTTPFound("/inbox")


def _filter(request: web.Request) -> tuple[str, InboxFilter]:
    q = request.query
    hooks = request.app[DEPS_KEY].inbox_filters
    extra = tuple(c for c in (h.condition(request) for h in hooks) if c is not None)
    scope = q.get("scope", "all") if q.get("scope") in SCOPES else "all"
    return scope, InboxFilter(
        account_id=int_or_none(q.get("account")),
        channel_kind=q.get("channel") or None,
        mine_only=scope == "mine",
        unassigned_only=scope == "unassigned",
        status=q.get("status") if q.get("status") in ("open", "closed") else None,
        mode=q.get("mode") if q.get("mode") in ("bot", "human") else None,
        extra=extra,
    )


@routes.get("/inbox")
@allow(STAFF)
async def inbox_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    scope, flt = _filter(request)
    async with deps.db.reading() as s:
        rows = await inbox(s, viewer, flt)
        accounts = (await s.scalars(select(ChannelAccount).order_by(ChannelAccount.id))).all()
    context = {
        "rows": rows,
        "accounts": accounts,
        "scope": scope,
        "flt": flt,
        "kinds": sorted({a.kind for a in accounts}),
        "labels": deps.channel_labels,
        "extra_filters": panels([await h.control(request) for h in deps.inbox_filters]),
    }
    # the live script re-fetches just the list when an event arrives
    template = "inbox_list.html" if request.query.get("partial") else "inbox.html"
    return await render(request, template, context)


@routes.get("/live/events")
@allow(STAFF)
async def live_events(request: web.Request) -> web.StreamResponse:
    return await stream_events(request, request.app[DEPS_KEY].live, viewer_of(request))
