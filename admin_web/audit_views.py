"""The audit log, searchable by admins: who viewed, exported, changed what, when.

Free text matches the actor (name or login), the action, the target and the detail
(stored as JSON text without ASCII escapes, so Chinese matches as typed). Pages go
back by id (keyset), so the thousandth page costs what the first does."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import Select, Text, cast, or_, select
from sqlalchemy.orm import aliased

from conversations.actions import audit
from conversations.models import AuditEntry, StaffUser

from .deps import DEPS_KEY
from .forms import BEIJING, day_end, day_start, int_or_none
from .i18n import gettext
from .policy import ADMINS, allow
from .render import render
from .security import viewer_of

routes = web.RouteTableDef()
PAGE = 100
EXPORT_LIMIT = 100_000
EXPORT_BATCH = 1_000
# the query keys that select rows (paging keys are not filters)
FILTER_KEYS = ("q", "action", "actor", "target_type", "target_id", "from", "to")


def filtered(query: Mapping[str, str]) -> Select[AuditEntry]:
    """The audit entries the filters in `query` select, newest first."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    if query.get("action"):
        stmt = stmt.where(AuditEntry.action == query["action"])
    if (actor := int_or_none(query.get("actor"))) is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor)
    if query.get("target_type"):
        stmt = stmt.where(AuditEntry.target_type == query["target_type"])
    if query.get("target_id"):
        stmt = stmt.where(AuditEntry.target_id == query["target_id"])
    if (since := day_start(query.get("from"))) is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if (until := day_end(query.get("to"))) is not None:
        stmt = stmt.where(AuditEntry.at < until)
    terms = query.get("q", "").split()
    if terms:
        actor_user = aliased(StaffUser)
        stmt = stmt.outerjoin(actor_user, actor_user.id == AuditEntry.actor_id)
        for term in terms:  # every word must appear somewhere in the entry
            stmt = stmt.where(
                or_(
                    actor_user.display_name.icontains(term, autoescape=True),
                    actor_user.username.icontains(term, autoescape=True),
                    AuditEntry.action.icontains(term, autoescape=True),
                    AuditEntry.target_type.icontains(term, autoescape=True),
                    AuditEntry.target_id.icontains(term, autoescape=True),
                    cast(AuditEntry.detail, Text).icontains(term, autoescape=True),
                    AuditEntry.ip.icontains(term, autoescape=True),
                )
            )
    return stmt


def _filters(query: Mapping[str, str]) -> dict[str, str]:
    return {k: query[k] for k in FILTER_KEYS if query.get(k)}


@routes.get("/audit")
@allow(ADMINS)
async def audit_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    q = request.query
    stmt = filtered(q).limit(PAGE + 1)
    if (before := int_or_none(q.get("before"))) is not None:
        stmt = stmt.where(AuditEntry.id < before)
    async with deps.db.reading() as s:
        rows = list((await s.scalars(stmt)).all())
        users = (await s.scalars(select(StaffUser).order_by(StaffUser.display_name))).all()
        actions = sorted(set((await s.scalars(select(AuditEntry.action).distinct())).all()))
    entries = rows[:PAGE]
    filters = _filters(q)
    older = (
        "/audit?" + urlencode({**filters, "before": entries[-1].id}) if len(rows) > PAGE else None
    )
    return await render(
        request,
        "audit.html",
        {
            "entries": entries,
            "users": users,
            "names": {u.id: u.display_name for u in users},
            "actions": actions,
            "q": q,
            "older": older,
            "first_page": "/audit?" + urlencode(filters) if before is not None else None,
            "export": "/audit/export.csv?" + urlencode(filters),
        },
    )


@routes.get("/audit/export.csv")
@allow(ADMINS)
async def audit_export(request: web.Request) -> web.StreamResponse:
    """The filtered entries as CSV (UTF-8 with BOM for Excel); the export is itself audited."""
    deps = request.app[DEPS_KEY]
    viewer = viewer_of(request)
    filters = _filters(request.query)
    async with deps.db.reading() as s:
        names = {i: n for i, n in await s.execute(select(StaffUser.id, StaffUser.display_name))}
        entries = list((await s.scalars(filtered(request.query).limit(EXPORT_LIMIT))).all())
    async with deps.db.transaction() as s:
        await audit(
            s,
            "export",
            actor_id=viewer.staff_id,
            target_type="audit_log",
            detail={"query": filters, "rows": len(entries), "format": "csv"},
            ip=request.remote,
        )
    stamp = datetime.now(BEIJING).strftime("%Y%m%d-%H%M")
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
        }
    )
    await resp.prepare(request)
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")  # Excel opens UTF-8 Chinese correctly only with a BOM
    writer.writerow(
        [
            gettext("Time"),
            gettext("Who"),
            gettext("Action"),
            gettext("Target type"),
            gettext("Target id"),
            gettext("Detail"),
            "IP",
        ]
    )
    for start in range(0, len(entries), EXPORT_BATCH):
        for e in entries[start : start + EXPORT_BATCH]:
            writer.writerow(
                [
                    e.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                    names.get(e.actor_id, "") if e.actor_id is not None else "",
                    e.action,
                    e.target_type or "",
                    e.target_id or "",
                    json.dumps(e.detail, ensure_ascii=False, sort_keys=True),
                    e.ip or "",
                ]
            )
        await resp.write(buf.getvalue().encode())
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        await resp.write(buf.getvalue().encode())
    await resp.write_eof()
    return resp
