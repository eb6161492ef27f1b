"""Console pages of the auto-reply engine: rule and FAQ editors, import/export, the
"try a message" box and hit counts. Editors and hit counts are for admins and managers;
every salesperson may try a message to see what the bot would answer."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from autoreply import service
from autoreply.cache import EngineCache
from autoreply.faq_transfer import (
    FaqImportError,
    FaqRow,
    parse_csv,
    parse_xlsx,
    to_csv,
    to_xlsx,
)
from autoreply.models import FaqEntry, KeywordRule
from autoreply.rules import InvalidRule
from autoreply.settings import AutoReplySettings
from autoreply.templates import VARIABLES
from conversations.models import ChannelAccount

from .deps import DEPS_KEY
from .policy import MANAGERS, STAFF, allow
from .render import render
from .security import viewer_of

MAX_IMPORT_BYTES = 5 * 1024 * 1024
VARIANT_SEPARATOR = "---"  # a line of its own between reply variants in the form


def _lines(value: object) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def _ints(value: object) -> list[int]:
    return [int(v) for v in str(value or "").replace("，", ",").split(",") if v.strip().isdigit()]


def rule_data(form: Mapping[str, Any], account_ids: list[int]) -> dict[str, Any]:
    """Rule fields from the editor form (validated later by the service)."""
    advanced = str(form.get("replies_json", "")).strip()
    if advanced:
        try:
            replies = json.loads(advanced)
        except json.JSONDecodeError as exc:
            raise InvalidRule([f"replies JSON: {exc}"]) from None
    else:
        text = str(form.get("replies", "")).replace("\r\n", "\n")
        replies = [v.strip() for v in text.split(f"\n{VARIANT_SEPARATOR}\n") if v.strip()]
    days = [int(d) for d in form.getall("days", []) if str(d).isdigit()]  # type: ignore[attr-defined]
    start, end = str(form.get("start", "")).strip(), str(form.get("end", "")).strip()
    window = (
        {
            "tz": str(form.get("tz") or "Asia/Shanghai"),
            "days": days or list(range(7)),
            "start": start or "00:00",
            "end": end or "23:59",
        }
        if start or end or days
        else None
    )
    return {
        "name": str(form.get("name", "")).strip()[:100],
        "match": str(form.get("match", "contains")),
        "keywords": _lines(form.get("keywords")),
        "pattern": str(form.get("pattern", "")).strip() or None,
        "action": str(form.get("action", "reply")),
        "replies": replies,
        "choice": str(form.get("choice", "random")),
        "priority": str(form.get("priority", "100")).strip() or "100",
        "channel_kinds": [
            c.strip() for c in str(form.get("channel_kinds", "")).split(",") if c.strip()
        ],
        "account_ids": account_ids,
        "tag_ids": _ints(form.get("tag_ids")),
        "time_window": window,
        "enabled": form.get("enabled") == "on",
    }


def _to_faq(**params: str) -> web.HTTPFound:
    return web.HTTPFound(f"/autoreply/faq?{urlencode(params)}")


def _replies_text(rule: KeywordRule) -> tuple[str, str]:
    """The plain form of a rule's replies, or its JSON when any has per-channel content."""
    if any(isinstance(r, dict) and r.get("channels") for r in rule.replies):
        return "", json.dumps(rule.replies, ensure_ascii=False, indent=2)
    texts = [r["text"] if isinstance(r, dict) else str(r) for r in rule.replies]
    return f"\n{VARIANT_SEPARATOR}\n".join(texts), ""


def build_routes(settings: AutoReplySettings) -> web.RouteTableDef:
    """The console's auto-reply routes; mount with `ConsoleDeps.extra_routes`."""
    routes = web.RouteTableDef()
    # the console's own engine for "try a message": rebuilt when the version row moves
    cache = EngineCache(settings)

    async def accounts(request: web.Request) -> list[ChannelAccount]:
        async with request.app[DEPS_KEY].db.reading() as s:
            return list(await s.scalars(select(ChannelAccount).order_by(ChannelAccount.id)))

    @routes.get("/autoreply/rules")
    @allow(MANAGERS)
    async def rules_page(request: web.Request) -> web.Response:
        async with request.app[DEPS_KEY].db.reading() as s:
            rules = await service.list_rules(s)
        return await render(
            request, "autoreply/rules.html", {"rules": rules, "saved": request.query.get("saved")}
        )

    async def rule_form(
        request: web.Request,
        rule: KeywordRule | None,
        data: Mapping[str, Any] | None,
        problems: list[str],
        action: str,
    ) -> web.Response:
        replies, replies_json = _replies_text(rule) if rule is not None else ("", "")
        return await render(
            request,
            "autoreply/rule_form.html",
            {
                "rule": rule,
                "data": data or {},
                "replies": replies,
                "replies_json": replies_json,
                "problems": problems,
                "accounts": await accounts(request),
                "variables": VARIABLES,
                "action": action,
            },
            status=400 if problems else 200,
        )

    @routes.get("/autoreply/rules/new")
    @allow(MANAGERS)
    async def new_rule(request: web.Request) -> web.Response:
        return await rule_form(request, None, None, [], "/autoreply/rules")

    @routes.get("/autoreply/rules/{id:\\d+}")
    @allow(MANAGERS)
    async def edit_rule(request: web.Request) -> web.Response:
        async with request.app[DEPS_KEY].db.reading() as s:
            rule = await s.get(KeywordRule, int(request.match_info["id"]))
        if rule is None:
            raise web.HTTPNotFound()
        return await rule_form(request, rule, None, [], f"/autoreply/rules/{rule.id}")

    @routes.post("/autoreply/rules")
    @routes.post("/autoreply/rules/{id:\\d+}")
    @allow(MANAGERS)
    async def save_rule(request: web.Request) -> web.Response:
        form = await request.post()
        rule_id = request.match_info.get("id")
        try:
            data = rule_data(
                form, [int(str(a)) for a in form.getall("account_ids", []) if str(a).isdigit()]
            )
            async with request.app[DEPS_KEY].db.transaction() as s:
                actor = viewer_of(request).staff_id
                if rule_id is None:
                    await service.create_rule(s, data, actor_id=actor)
                else:
                    await service.update_rule(s, int(rule_id), data, actor_id=actor)
        except InvalidRule as exc:
            action = "/autoreply/rules" + (f"/{rule_id}" if rule_id else "")
            return await rule_form(request, None, dict(form), exc.problems, action)
        except service.NotFound:
            raise web.HTTPNotFound() from None
        cache.invalidate()
        raise web.HTTPFound("/autoreply/rules?saved=1")

    @routes.post("/autoreply/rules/{id:\\d+}/delete")
    @allow(MANAGERS)
    async def delete_rule(request: web.Request) -> web.Response:
        try:
            async with request.app[DEPS_KEY].db.transaction() as s:
                await service.delete_rule(
                    s, int(request.match_info["id"]), actor_id=viewer_of(request).staff_id
                )
        except service.NotFound:
            raise web.HTTPNotFound() from None
        cache.invalidate()
        raise web.HTTPFound("/autoreply/rules")

    @routes.get("/autoreply/faq")
    @allow(MANAGERS)
    async def faq_page(request: web.Request) -> web.Response:
        edit_id = request.query.get("edit")
        async with request.app[DEPS_KEY].db.reading() as s:
            entries = await service.list_faq(s)
            terms = await service.list_terms(s)
            editing = await s.get(FaqEntry, int(edit_id)) if edit_id and edit_id.isdigit() else None
        return await render(
            request,
            "autoreply/faq.html",
            {
                "entries": entries,
                "terms": terms,
                "editing": editing,
                "message": request.query.get("message"),
                "error": request.query.get("error"),
            },
        )

    @routes.post("/autoreply/faq")
    @allow(MANAGERS)
    async def save_faq(request: web.Request) -> web.Response:
        form = await request.post()
        row = FaqRow(
            slug=str(form.get("slug", "")).strip()[:64],
            question=str(form.get("question", "")).strip()[:500],
            answer=str(form.get("answer", "")).strip(),
            alternatives=tuple(_lines(form.get("alternatives"))),
            category=str(form.get("category", "")).strip()[:64],
            enabled=form.get("enabled") == "on",
        )
        try:
            async with request.app[DEPS_KEY].db.transaction() as s:
                await service.save_faq(s, row, actor_id=viewer_of(request).staff_id)
        except InvalidRule as exc:
            raise _to_faq(error="; ".join(exc.problems)) from None
        cache.invalidate()
        raise _to_faq(message="saved")

    @routes.post("/autoreply/faq/{id:\\d+}/delete")
    @allow(MANAGERS)
    async def delete_faq(request: web.Request) -> web.Response:
        try:
            async with request.app[DEPS_KEY].db.transaction() as s:
                await service.delete_faq(
                    s, int(request.match_info["id"]), actor_id=viewer_of(request).staff_id
                )
        except service.NotFound:
            raise web.HTTPNotFound() from None
        cache.invalidate()
        raise web.HTTPFound("/autoreply/faq")

    @routes.post("/autoreply/faq/import")
    @allow(MANAGERS)
    async def import_faq(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            raise _to_faq(error="no file")
        data = upload.file.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            raise _to_faq(error="file too large")
        try:
            rows = (
                parse_xlsx(data)
                if (upload.filename or "").lower().endswith(".xlsx")
                else parse_csv(data)
            )
            async with request.app[DEPS_KEY].db.transaction() as s:
                result = await service.import_faq(
                    s,
                    rows,
                    actor_id=viewer_of(request).staff_id,
                    replace=form.get("replace") == "on",
                )
        except (FaqImportError, InvalidRule) as exc:
            raise _to_faq(error="; ".join(exc.problems[:5])) from None
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:  # not a workbook
            raise _to_faq(error=f"unreadable file: {type(exc).__name__}") from None
        cache.invalidate()
        message = (
            f"imported: {result.created} new, {result.updated} updated, {result.removed} removed"
        )
        raise _to_faq(message=message)

    @routes.get("/autoreply/faq/export.{fmt:(csv|xlsx)}")
    @allow(MANAGERS)
    async def export_faq(request: web.Request) -> web.Response:
        async with request.app[DEPS_KEY].db.reading() as s:
            rows = await service.export_faq(s)
        if request.match_info["fmt"] == "xlsx":
            body, ctype = (
                to_xlsx(rows),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        else:
            body, ctype = to_csv(rows), "text/csv"
        return web.Response(
            body=body,
            content_type=ctype,
            headers={
                "Content-Disposition": f'attachment; filename="faq.{request.match_info["fmt"]}"'
            },
        )

    @routes.post("/autoreply/terms")
    @allow(MANAGERS)
    async def save_term(request: web.Request) -> web.Response:
        form = await request.post()
        synonyms = str(form.get("synonyms", "")).replace("，", ",").replace("|", ",").split(",")
        try:
            async with request.app[DEPS_KEY].db.transaction() as s:
                await service.save_term(
                    s,
                    str(form.get("term", ""))[:64],
                    synonyms,
                    actor_id=viewer_of(request).staff_id,
                )
        except InvalidRule as exc:
            raise _to_faq(error="; ".join(exc.problems)) from None
        cache.invalidate()
        raise _to_faq(message="term saved")

    @routes.post("/autoreply/terms/{id:\\d+}/delete")
    @allow(MANAGERS)
    async def delete_term(request: web.Request) -> web.Response:
        try:
            async with request.app[DEPS_KEY].db.transaction() as s:
                await service.delete_term(
                    s, int(request.match_info["id"]), actor_id=viewer_of(request).staff_id
                )
        except service.NotFound:
            raise web.HTTPNotFound() from None
        cache.invalidate()
        raise web.HTTPFound("/autoreply/faq")

    async def explanation(request: web.Request) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        query = request.query
        text = query.get("text", "").strip()[:2000]
        account_list = await accounts(request)
        by_id = {a.id: a for a in account_list}
        account_id = int(query["account"]) if query.get("account", "").isdigit() else None
        account = (
            by_id.get(account_id)
            if account_id is not None
            else (account_list[0] if account_list else None)
        )
        form = {
            "text": text,
            "account": account.id if account else None,
            "tags": query.get("tags", ""),
            "accounts": account_list,
        }
        if not text:
            return None, form
        async with request.app[DEPS_KEY].db.reading() as s:
            result = await service.explain(
                s,
                cache,
                text,
                channel_kind=account.kind if account else "",
                account_id=account.id if account else 0,
                tag_ids=_ints(query.get("tags")),
            )
        return result, form

    @routes.get("/autoreply/try")
    @allow(STAFF)
    async def try_page(request: web.Request) -> web.Response:
        result, form = await explanation(request)
        can_edit = viewer_of(request).role in MANAGERS
        return await render(
            request,
            "autoreply/try.html",
            {"result": result, "form": form, "can_edit": can_edit},
        )

    @routes.get("/autoreply/api/explain")
    @allow(STAFF)
    async def explain_json(request: web.Request) -> web.Response:
        result, _form = await explanation(request)
        if result is None:
            raise web.HTTPBadRequest(text="text is required")
        return web.json_response(result, dumps=lambda v: json.dumps(v, ensure_ascii=False))

    @routes.get("/autoreply/hits")
    @allow(MANAGERS)
    async def hits_page(request: web.Request) -> web.Response:
        async with request.app[DEPS_KEY].db.reading() as s:
            counts = await service.hit_counts(s)
        return await render(request, "autoreply/hits.html", {"counts": counts})

    return routes
