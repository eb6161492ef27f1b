"""The audit log, searchable by admins: who viewed, exported, changed what, when."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from conversations.models import AuditEntry, StaffUser

from .deps import DEPS_KEY
from .forms import day_end, day_start, int_or_none
from .policy import ADMINS, allow
from .render import render

routes = web.RouteTableDef()
PAGE = 100


@routes.get("/audit")
@allow(ADMINS)
async def audit_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    q = request.query
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE)
    if q.get("action"):
        query = query.where(AuditEntry.action == q["action"])
    if (actor := int_or_none(q.get("actor"))) is not None:
        query = query.where(AuditEntry.actor_id == actor)
    if q.get("target_type"):
        query = query.where(AuditEntry.target_type == q["target_type"])
    if q.get("target_id"):
        query = query.where(AuditEntry.target_id == q["target_id"])
    if (since := day_start(q.get("from"))) is not None:
        query = query.where(AuditEntry.at >= since)
    if (until := day_end(q.get("to"))) is not None:
        query = query.where(AuditEntry.at < until)
    async with deps.db.reading() as s:
        entries = (await s.scalars(query)).all()
        users = (await s.scalars(select(StaffUser).order_by(StaffUser.display_name))).all()
        actions = sorted(set((await s.scalars(select(AuditEntry.action).distinct())).all()))
    return await render(
        request,
        "audit.html",
        {
            "entries": entries,
            "users": users,
            "names": {u.id: u.display_name for u in users},
            "actions": actions,
            "q": q,
        },
    )
