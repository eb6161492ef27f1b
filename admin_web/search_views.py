"""History search in Chinese for managers (and salespeople within their scope), with an
audited CSV/XLSX export."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from conversations.access import AccessDenied, Role
from conversations.actions import audit
from conversations.models import ChannelAccount, StaffUser
from conversations.search import SearchFilter, SearchHit, search_messages

from .deps import DEPS_KEY
from .forms import BEIJING, day_end, day_start, denied, int_or_none
from .i18n import gettext
from .policy import MANAGERS, STAFF, allow
from .render import render
from .security import viewer_of
from .xlsx import workbook

routes = web.RouteTableDef()
PAGE = 20
EXPORT_LIMIT = 50_000


def _filter(request: web.Request, limit: int, offset: int = 0) -> SearchFilter:
    q = request.query
    return SearchFilter(
        query=q.get("q", "")[:200],
        staff_id=int_or_none(q.get("staff")),
        channel_kind=q.get("channel") or None,
        account_id=int_or_none(q.get("account")),
        since=day_start(q.get("from")),
        until=day_end(q.get("to")),
        limit=limit,
        offset=offset,
    )


@routes.get("/search")
@allow(STAFF)
async def search_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    page = max(1, int_or_none(request.query.get("page")) or 1)
    flt = _filter(request, PAGE + 1, (page - 1) * PAGE)
    async with deps.db.reading() as s:
        hits = await search_messages(s, viewer, flt) if flt.query.strip() else []
        staff_q = select(StaffUser).where(StaffUser.role.in_(("sales", "manager")))
        if viewer.role == Role.MANAGER:
            staff_q = staff_q.where(StaffUser.team_id == viewer.team_id)
        elif viewer.role == Role.SALES:
            staff_q = staff_q.where(StaffUser.id == viewer.staff_id)
        staff = (await s.scalars(staff_q.order_by(StaffUser.display_name))).all()
        kinds = sorted(set((await s.scalars(select(ChannelAccount.kind))).all()))
    return await render(
        request,
        "search.html",
        {
            "hits": hits[:PAGE],
            "more": len(hits) > PAGE,
            "page": page,
            "q": request.query,
            "staff": staff,
            "kinds": kinds,
            "labels": deps.channel_labels,
            "can_export": viewer.role in (Role.ADMIN, Role.MANAGER),
            "request_qs": urlencode(
                [(k, v) for k, v in request.query.items() if k not in ("page", "format")]
            ),
        },
    )


def _rows(hits: list[SearchHit]) -> list[list[str]]:
    return [
        [
            str(h.message_id),
            h.occurred_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            h.account_kind,
            h.account_name,
            h.customer_name,
            h.assignee_name or "",
            h.direction,
            h.text,
        ]
        for h in hits
    ]


@routes.get("/search/export")
@allow(MANAGERS)
async def export(request: web.Request) -> web.StreamResponse:
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise web.HTTPBadRequest(text="format")
    flt = _filter(request, EXPORT_LIMIT)
    if not flt.query.strip():
        raise web.HTTPBadRequest(text=gettext("Search for something first."))
    async with deps.db.transaction() as s:
        try:
            hits = await search_messages(s, viewer, flt)
        except AccessDenied as exc:
            raise denied(exc) from None
        await audit(
            s,
            "export",
            actor_id=viewer.staff_id,
            target_type="search",
            detail={"query": dict(request.query), "rows": len(hits), "format": fmt},
            ip=request.remote,
        )
    header = [
        gettext("Message"),
        gettext("Time"),
        gettext("Channel"),
        gettext("Account"),
        gettext("Customer"),
        gettext("Assignee"),
        gettext("Direction"),
        gettext("Text"),
    ]
    stamp = datetime.now(BEIJING).strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        writer.writerows(_rows(hits))
        # a BOM so that Excel opens UTF-8 Chinese correctly
        return web.Response(
            body=("\ufeff" + buf.getvalue()).encode(),
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="search-{stamp}.csv"',
            },
        )
    return web.Response(
        body=workbook(header, _rows(hits)),
        headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": f'attachment; filename="search-{stamp}.xlsx"',
        },
    )
