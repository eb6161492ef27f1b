"""Console pages for tagging (issue 7): tag manager and auto-tag rules, segment builder
with live count, customer import with a dry-run report, export, statistics.

Mounted by adding `routes` to `ConsoleDeps.extra_routes`. JSON endpoints live under
/tagging/api/ (behind the console login and CSRF header, unlike the public /api/).

Who may do what (issue 9): everyone reads the tag catalogue; admins and managers edit
tag definitions and auto-tag rules; staff tag the customers they may see, one at a time;
segments, bulk tagging, import/export and statistics belong to campaigns (admin, manager,
marketer)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import func, select

from conversations.access import AccessDenied
from conversations.db import utcnow
from conversations.queries import visible_customer
from tagging.importing import (
    ImportFileError,
    export_rows,
    import_customers,
    rows_to_csv,
    rows_to_xlsx,
)
from tagging.models import CustomerTag, Segment, Tag, TagGroup, TagRule
from tagging.rules import RULE_KINDS, RuleError, create_rule
from tagging.segments import SegmentError
from tagging.segments.compiler import field_help
from tagging.segments.service import (
    compile_definition,
    count_customers,
    customer_ids_page,
    definition_from,
    definition_of,
    refresh_count,
    save_segment,
)
from tagging.stats import DIMENSIONS, distribution, new_customers_per_day, tag_groups_overview
from tagging.tags import (
    TagError,
    Why,
    bulk_tag_where,
    create_group,
    create_tag,
    tag_customer,
    untag_customer,
)

from .deps import DEPS_KEY
from .i18n import gettext
from .policy import ALL_ROLES, CAMPAIGNS, MANAGERS, STAFF, allow
from .render import render
from .security import viewer_of

routes = web.RouteTableDef()
TZ = ZoneInfo("Asia/Shanghai")
MAX_UPLOAD = 5 * 1024 * 1024
MAX_PAGE = 5000


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _back(request: web.Request, default: str, **params: str) -> web.HTTPFound:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return web.HTTPFound(f"{default}?{query}" if query else default)


# ---------------------------------------------------------------- tags and rules


@routes.get("/tagging/tags")
@allow(ALL_ROLES)
async def tags_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        groups = (await s.scalars(select(TagGroup).order_by(TagGroup.sort, TagGroup.id))).all()
        tags = (await s.scalars(select(Tag).order_by(Tag.sort, Tag.id))).all()
        counts = dict(
            (
                await s.execute(
                    select(CustomerTag.tag_id, func.count()).group_by(CustomerTag.tag_id)
                )
            ).all()
        )
        rules = (await s.scalars(select(TagRule).order_by(TagRule.priority, TagRule.id))).all()
    by_group: dict[int, list[Tag]] = {}
    for tag in tags:
        by_group.setdefault(tag.group_id, []).append(tag)
    tag_names = {t.id: f"{g.name}/{t.name}" for g in groups for t in by_group.get(g.id, [])}
    return await render(
        request,
        "tagging/tags.html",
        {
            "groups": groups,
            "by_group": by_group,
            "counts": counts,
            "rules": rules,
            "tag_names": tag_names,
            "rule_kinds": RULE_KINDS,
            "error": request.query.get("error"),
            "can_edit": viewer_of(request).role in MANAGERS,
        },
    )


@routes.post("/tagging/groups")
@allow(MANAGERS)
async def create_group_view(request: web.Request) -> web.Response:
    form = await request.post()
    async with request.app[DEPS_KEY].db.transaction() as s:
        try:
            await create_group(
                s,
                str(form.get("name", "")),
                exclusive=form.get("exclusive") == "on",
                color=str(form.get("color") or "#8c8c8c")[:16],
            )
        except TagError as exc:
            raise _back(request, "/tagging/tags", error=str(exc)) from None
    raise web.HTTPFound("/tagging/tags")


@routes.post("/tagging/tags")
@allow(MANAGERS)
async def create_tag_view(request: web.Request) -> web.Response:
    form = await request.post()
    async with request.app[DEPS_KEY].db.transaction() as s:
        group = await s.get(TagGroup, _int(form.get("group_id")) or 0)
        if group is None:
            raise _back(request, "/tagging/tags", error=gettext("Choose a tag group."))
        try:
            await create_tag(
                s, group, str(form.get("name", "")), color=str(form.get("color") or "") or None
            )
        except TagError as exc:
            raise _back(request, "/tagging/tags", error=str(exc)) from None
    raise web.HTTPFound("/tagging/tags")


@routes.post("/tagging/tags/{id:\\d+}/archive")
@allow(MANAGERS)
async def archive_tag_view(request: web.Request) -> web.Response:
    async with request.app[DEPS_KEY].db.transaction() as s:
        tag = await s.get(Tag, int(request.match_info["id"]))
        if tag is None:
            raise web.HTTPNotFound()
        tag.archived = not tag.archived
    raise web.HTTPFound("/tagging/tags")


@routes.post("/tagging/rules")
@allow(MANAGERS)
async def create_rule_view(request: web.Request) -> web.Response:
    form = await request.post()
    kind = str(form.get("kind", ""))
    pattern = str(form.get("pattern", "")).strip()
    config: dict[str, Any] = {}
    if kind in ("channel", "event"):
        try:
            config = json.loads(pattern or "{}")
        except json.JSONDecodeError:
            raise _back(
                request,
                "/tagging/tags",
                error=gettext("Channel and event rules take JSON settings."),
            ) from None
        pattern = ""
    async with request.app[DEPS_KEY].db.transaction() as s:
        tag_id = _int(form.get("tag_id"))
        if tag_id is None or await s.get(Tag, tag_id) is None:
            raise _back(request, "/tagging/tags", error=gettext("Choose a tag."))
        try:
            await create_rule(
                s,
                name=str(form.get("name", "")).strip()[:100] or pattern[:100],
                tag_id=tag_id,
                kind=kind,
                pattern=pattern,
                config=config,
                priority=_int(form.get("priority")) or 100,
            )
        except RuleError as exc:
            raise _back(request, "/tagging/tags", error=str(exc)) from None
    raise web.HTTPFound("/tagging/tags")


@routes.post("/tagging/rules/{id:\\d+}/toggle")
@allow(MANAGERS)
async def toggle_rule_view(request: web.Request) -> web.Response:
    async with request.app[DEPS_KEY].db.transaction() as s:
        rule = await s.get(TagRule, int(request.match_info["id"]))
        if rule is None:
            raise web.HTTPNotFound()
        rule.enabled = not rule.enabled
    raise web.HTTPFound("/tagging/tags")


@routes.post("/tagging/customers/{id:\\d+}/tags")
@allow(STAFF)
async def tag_customer_view(request: web.Request) -> web.Response:
    """Manual tagging from the inbox or the customer page; `next` says where to go back."""
    form = await request.post()
    viewer = viewer_of(request)
    customer_id = int(request.match_info["id"])
    tag_id = _int(form.get("tag_id"))
    why = Why("manual", actor_id=viewer.staff_id, reason=str(form.get("reason", ""))[:500])
    async with request.app[DEPS_KEY].db.transaction() as s:
        try:
            await visible_customer(s, viewer, customer_id)
        except LookupError:
            raise web.HTTPNotFound() from None
        except AccessDenied:
            raise web.HTTPForbidden(text=gettext("You may not see this customer.")) from None
        if tag_id is None:
            raise web.HTTPBadRequest(text="tag_id")
        try:
            if form.get("remove") == "1":
                await untag_customer(s, customer_id, tag_id, why)
            else:
                await tag_customer(s, customer_id, tag_id, why)
        except TagError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
    target = str(form.get("next") or "/inbox")
    raise web.HTTPFound(
        target if target.startswith("/") and not target.startswith("//") else "/inbox"
    )


# ---------------------------------------------------------------- segments


@routes.get("/tagging/segments")
@allow(CAMPAIGNS)
async def segments_page(request: web.Request) -> web.Response:
    async with request.app[DEPS_KEY].db.reading() as s:
        segments = (await s.scalars(select(Segment).order_by(Segment.name))).all()
        tags = (
            await s.execute(
                select(Tag.id, TagGroup.name, Tag.name)
                .join(TagGroup, TagGroup.id == Tag.group_id)
                .where(Tag.archived.is_(False))
                .order_by(TagGroup.sort, Tag.sort, Tag.id)
            )
        ).all()
    return await render(
        request,
        "tagging/segments.html",
        {
            "segments": segments,
            "fields": field_help(),
            "fields_json": json.dumps(sorted(field_help())),
            "tags": [(tid, f"{g}/{n}") for tid, g, n in tags],
            "error": request.query.get("error"),
            "saved": request.query.get("saved"),
            "bulk": request.query.get("bulk"),
        },
    )


def _segment_error(exc: SegmentError, expression: str | None) -> web.Response:
    return web.json_response(
        {
            "error": str(exc),
            "position": exc.position,
            "path": exc.path,
            "pointer": exc.pointer(expression) if expression else "",
        },
        status=400,
    )


@routes.post("/tagging/api/segments/count")
@allow(CAMPAIGNS)
async def segment_count_api(request: web.Request) -> web.Response:
    """Live count for the builder: {"expression": …} or {"ast": …} → count and both forms."""
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise web.HTTPBadRequest(text="JSON body expected") from None
    expression = body.get("expression") if isinstance(body, dict) else None
    ast = body.get("ast") if isinstance(body, dict) else None
    try:
        definition = definition_from(expression=expression, ast=ast)
        async with request.app[DEPS_KEY].db.reading() as s:
            count = await count_customers(s, definition)
    except SegmentError as exc:
        return _segment_error(exc, expression)
    return web.json_response(
        {"count": count, "expression": definition.expression, "ast": definition.ast}
    )


@routes.get("/tagging/api/segments/{id:\\d+}/ids")
@allow(CAMPAIGNS)
async def segment_ids_api(request: web.Request) -> web.Response:
    """Customer ids of a saved segment, ascending pages: ?after=<last id>&limit=<≤5000>."""
    after = _int(request.query.get("after")) or 0
    limit = min(_int(request.query.get("limit")) or 1000, MAX_PAGE)
    async with request.app[DEPS_KEY].db.reading() as s:
        segment = await s.get(Segment, int(request.match_info["id"]))
        if segment is None:
            raise web.HTTPNotFound()
        ids = await customer_ids_page(s, definition_of(segment), after_id=after, limit=limit)
    return web.json_response({"ids": ids, "next_after": ids[-1] if len(ids) == limit else None})


@routes.post("/tagging/segments")
@allow(CAMPAIGNS)
async def save_segment_view(request: web.Request) -> web.Response:
    form = await request.post()
    expression = str(form.get("expression", ""))
    name = str(form.get("name", "")).strip()[:100]
    if not name:
        raise _back(request, "/tagging/segments", error=gettext("Give the segment a name."))
    try:
        async with request.app[DEPS_KEY].db.transaction() as s:
            segment = await save_segment(
                s,
                name,
                definition_from(expression=expression),
                description=str(form.get("description", ""))[:500],
                actor_id=viewer_of(request).staff_id,
            )
            await refresh_count(s, segment)
    except SegmentError as exc:
        raise _back(request, "/tagging/segments", error=str(exc)) from None
    raise _back(request, "/tagging/segments", saved=name)


@routes.post("/tagging/segments/{id:\\d+}/bulk-tag")
@allow(CAMPAIGNS)
async def bulk_tag_segment_view(request: web.Request) -> web.Response:
    """Tag everyone in a saved segment (set-based)."""
    form = await request.post()
    tag_id = _int(form.get("tag_id"))
    async with request.app[DEPS_KEY].db.transaction() as s:
        segment = await s.get(Segment, int(request.match_info["id"]))
        if segment is None or tag_id is None:
            raise web.HTTPNotFound()
        condition = await compile_definition(s, definition_of(segment))
        added = await bulk_tag_where(
            s,
            tag_id,
            condition,
            Why("bulk", actor_id=viewer_of(request).staff_id, reason=f"segment {segment.name}"),
        )
    raise _back(request, "/tagging/segments", bulk=str(added))


# ---------------------------------------------------------------- import / export


@routes.get("/tagging/import")
@allow(CAMPAIGNS)
async def import_page(request: web.Request) -> web.Response:
    return await render(request, "tagging/import.html", {"report": None})


@routes.post("/tagging/import")
@allow(CAMPAIGNS)
async def import_view(request: web.Request) -> web.Response:
    """Dry-run first: the report page carries the file back for the real import."""
    form = await request.post()
    upload = form.get("file")
    if isinstance(upload, web.FileField):
        data, filename = upload.file.read(MAX_UPLOAD + 1), upload.filename
    else:
        try:
            data = base64.b64decode(str(form.get("data_b64", "")), validate=True)
        except binascii.Error:
            raise web.HTTPBadRequest(text="data_b64") from None
        filename = str(form.get("filename", ""))
    if len(data) > MAX_UPLOAD:
        return await render(
            request,
            "tagging/import.html",
            {"report": None, "error": gettext("The file is larger than 5 MB.")},
        )
    apply = form.get("mode") == "apply"
    try:
        async with request.app[DEPS_KEY].db.transaction() as s:
            report = await import_customers(
                s,
                data,
                filename,
                today=utcnow().astimezone(TZ).date(),
                dry_run=not apply,
                actor_id=viewer_of(request).staff_id,
            )
    except ImportFileError as exc:
        return await render(request, "tagging/import.html", {"report": None, "error": str(exc)})
    return await render(
        request,
        "tagging/import.html",
        {
            "report": report,
            "data_b64": base64.b64encode(data).decode() if not apply else "",
            "filename": filename,
        },
    )


@routes.get("/tagging/export.{fmt:(csv|xlsx)}")
@allow(CAMPAIGNS)
async def export_view(request: web.Request) -> web.Response:
    segment_id = _int(request.query.get("segment"))
    async with request.app[DEPS_KEY].db.reading() as s:
        condition = None
        if segment_id is not None:
            segment = await s.get(Segment, segment_id)
            if segment is None:
                raise web.HTTPNotFound()
            condition = await compile_definition(s, definition_of(segment))
        rows = await export_rows(s, condition)
    fmt = request.match_info["fmt"]
    body = rows_to_csv(rows) if fmt == "csv" else rows_to_xlsx(rows)
    content_type = (
        "text/csv"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="customers.{fmt}"'},
    )


# ---------------------------------------------------------------- statistics


@routes.get("/tagging/stats")
@allow(CAMPAIGNS)
async def stats_page(request: web.Request) -> web.Response:
    today = utcnow().astimezone(TZ).date()
    async with request.app[DEPS_KEY].db.reading() as s:
        titles = {
            "province": gettext("Province"),
            "gender": gettext("Gender"),
            "age_bracket": gettext("Age bracket"),
            "occupation": gettext("Occupation"),
            "intent": gettext("Intent level"),
            "abc": gettext("Value class (ABC)"),
            "hobby": gettext("Hobbies"),
        }
        dims = {title: await distribution(s, name, limit=12) for name, title in titles.items()}
        groups = await tag_groups_overview(s)
        trend = await new_customers_per_day(s, today - timedelta(days=29), today, TZ)
    return await render(
        request,
        "tagging/stats.html",
        {
            "dims": dims,
            "groups": groups,
            "trend": trend,
            "trend_max": max((b.count for b in trend), default=0),
        },
    )


@routes.get("/tagging/api/stats/{dimension}")
@allow(CAMPAIGNS)
async def stats_api(request: web.Request) -> web.Response:
    """Chart data: [{"label": …, "count": …}] for a dimension (see tagging.stats)."""
    name = request.match_info["dimension"]
    if name not in DIMENSIONS and name != "hobby":
        raise web.HTTPNotFound(text=f"known: {', '.join(DIMENSIONS)}, hobby")
    async with request.app[DEPS_KEY].db.reading() as s:
        buckets = await distribution(s, name)
    return web.json_response([{"label": b.label, "count": b.count} for b in buckets])
