"""Console pages of the auto-reply engine: rule and FAQ editors, import/export, the
"try a message" box and hit counts. Editors and hit counts are for admins and managers;
every salesperson may try a message to see what the bot would answer."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping
from datetime import date, time, timedelta
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
from autoreply.hours import BusinessHours
from autoreply.models import FaqEntry, KeywordRule
from autoreply.rules import InvalidRule
from autoreply.settings import AutoReplySettings
from autoreply.templates import VARIABLES
from conversations.db import utcnow
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


WEEKDAYS = range(7)  # Monday = 0, as stored in weekly_hours
MAX_DATE_RANGE = 366  # a holiday range longer than a year is a typo
COMMON_TIMEZONES = (
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
)


def spans_text(spans: list[Any]) -> str:
    """Stored spans [["09:00", "12:00"], …] as the editor shows them: 09:00-12:00, …"""
    return ", ".join(f"{start}-{end}" for start, end in spans)


_HH_MM = re.compile(r"(\d{1,2})[:：](\d{2})")


def _clock_time(text: str) -> time:
    """A clock time typed as 9:00, 09:00 or 9：00 (full-width colon); raises ValueError."""
    found = _HH_MM.fullmatch(text.strip())
    if found is None:
        raise ValueError(text)
    return time(int(found.group(1)), int(found.group(2)))


def parse_spans(text: str, day_label: str) -> list[list[str]]:
    """Spans as typed (09:00-12:00, 13:30-18:00) → [["09:00", "12:00"], ["13:30", "18:00"]]."""
    spans: list[list[str]] = []
    for part in text.replace("，", ",").replace("；", ",").replace(";", ",").split(","):
        part = part.strip().replace("–", "-").replace("~", "-").replace("～", "-")
        if not part:
            continue
        start, sep, end = part.partition("-")
        try:
            if not sep:
                raise ValueError(part)
            times = [_clock_time(v) for v in (start, end)]
        except ValueError:
            raise InvalidRule([f"{day_label}: {part!r} is not HH:MM-HH:MM"]) from None
        spans.append([t.strftime("%H:%M") for t in times])
    return sorted(spans)


def parse_dates(text: str, label: str) -> list[str]:
    """One date or range per line ("2026-10-01" or "2026-10-01..2026-10-07") → ISO dates."""
    found: set[date] = set()
    for line in _lines(text.replace(",", "\n").replace("，", "\n")):
        first, sep, last = line.replace("～", "..").replace("~", "..").partition("..")
        try:
            start = date.fromisoformat(first.strip())
            end = date.fromisoformat(last.strip()) if sep else start
        except ValueError:
            raise InvalidRule([f"{label}: {line!r} is not a date (YYYY-MM-DD)"]) from None
        if not 0 <= (end - start).days < MAX_DATE_RANGE:
            raise InvalidRule([f"{label}: {line!r} is not a range of at most a year"])
        found.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    return [d.isoformat() for d in sorted(found)]


def hours_data(form: Mapping[str, Any]) -> dict[str, Any]:
    """Account settings from the business-hours form (validated again by the service)."""
    problems: list[str] = []
    weekly: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        try:
            spans = parse_spans(str(form.get(f"day{day}", "")), f"day {day + 1}")
        except InvalidRule as exc:
            problems += exc.problems
            continue
        if spans:
            weekly[str(day)] = spans
    dates: dict[str, list[str]] = {}
    for name in ("holidays", "workdays"):
        try:
            dates[name] = parse_dates(str(form.get(name, "")), name)
        except InvalidRule as exc:
            problems += exc.problems
    if not problems and (both := set(dates["holidays"]) & set(dates["workdays"])):
        problems.append(f"both a holiday and a working day: {', '.join(sorted(both))}")
    if problems:
        raise InvalidRule(problems)
    return {
        "timezone": str(form.get("timezone", "")).strip() or "Asia/Shanghai",
        "weekly_hours": weekly,
        "holidays": dates["holidays"],
        "workdays": dates["workdays"],
        "welcome_text": str(form.get("welcome_text", "")).strip(),
        "away_text": str(form.get("away_text", "")).strip(),
        "handoff_text": str(form.get("handoff_text", "")).strip(),
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

    async def hours_form(
        request: web.Request,
        account: ChannelAccount,
        account_list: list[ChannelAccount],
        values: Mapping[str, Any],
        problems: list[str],
    ) -> web.Response:
        open_now: bool | None = None
        if not problems:
            hours = BusinessHours.from_json(
                values["timezone"], values["weekly_hours"], values["holidays"], values["workdays"]
            )
            open_now = hours.is_open(utcnow()) if hours.configured else None
        raw: Mapping[str, str] = values.get("raw") or {}

        def lines(value: object) -> str:
            return "\n".join(map(str, value)) if isinstance(value, list) else str(value)

        return await render(
            request,
            "autoreply/hours.html",
            {
                "account": account,
                "accounts": account_list,
                "values": values,
                "days": [
                    (
                        day,
                        raw[f"day{day}"]
                        if raw
                        else spans_text(values["weekly_hours"].get(str(day), [])),
                    )
                    for day in WEEKDAYS
                ],
                "holidays": lines(values["holidays"]),
                "workdays": lines(values["workdays"]),
                "timezones": COMMON_TIMEZONES,
                "defaults": settings,
                "problems": problems,
                "open_now": open_now,
                "saved": request.query.get("saved"),
            },
            status=400 if problems else 200,
        )

    def chosen_account(account_list: list[ChannelAccount], raw_id: object) -> ChannelAccount | None:
        text = str(raw_id or "")
        if not text:
            return account_list[0] if account_list else None
        return next((a for a in account_list if str(a.id) == text), None)

    @routes.get("/autoreply/hours")
    @allow(MANAGERS)
    async def hours_page(request: web.Request) -> web.Response:
        account_list = await accounts(request)
        account = chosen_account(account_list, request.query.get("account"))
        if account is None:
            if request.query.get("account"):
                raise web.HTTPNotFound()
            return await render(request, "autoreply/hours.html", {"account": None})
        async with request.app[DEPS_KEY].db.reading() as s:
            row = await service.get_account_settings(s, account.id)
        values = {f: getattr(row, f) for f in service.ACCOUNT_FIELDS}
        return await hours_form(request, account, account_list, values, [])

    @routes.post("/autoreply/hours")
    @allow(MANAGERS)
    async def save_hours(request: web.Request) -> web.Response:
        form = await request.post()
        account_list = await accounts(request)
        if not str(form.get("account", "")).isdigit():
            raise web.HTTPBadRequest(text="account is required")
        account = chosen_account(account_list, form.get("account"))
        if account is None:
            raise web.HTTPNotFound()
        try:
            data = hours_data(form)
            async with request.app[DEPS_KEY].db.transaction() as s:
                await service.save_account_settings(
                    s, account.id, data, actor_id=viewer_of(request).staff_id
                )
        except InvalidRule as exc:
            # show what was typed, not what is stored, beside the problems
            typed: dict[str, Any] = {f: str(form.get(f, "")) for f in service.ACCOUNT_FIELDS}
            typed["raw"] = {f"day{d}": str(form.get(f"day{d}", "")) for d in WEEKDAYS}
            return await hours_form(request, account, account_list, typed, exc.problems)
        cache.invalidate()
        raise web.HTTPFound(f"/autoreply/hours?{urlencode({'account': account.id, 'saved': 1})}")

    @routes.get("/autoreply/hits")
    @allow(MANAGERS)
    async def hits_page(request: web.Request) -> web.Response:
        async with request.app[DEPS_KEY].db.reading() as s:
            counts = await service.hit_counts(s)
        return await render(request, "autoreply/hits.html", {"counts": counts})

    return routes
