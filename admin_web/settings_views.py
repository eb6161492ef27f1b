"""Settings: channel accounts (secrets sealed before storage, "test connection") and
business hours per account."""

from __future__ import annotations

import re
import secrets

from aiohttp import web
from sqlalchemy import select

from conversations.actions import audit
from conversations.models import ChannelAccount

from .deps import DEPS_KEY, ConnectionResult
from .i18n import gettext
from .policy import ADMINS, allow
from .render import render
from .security import viewer_of

routes = web.RouteTableDef()
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
SECRET_MASK = "••••••"  # noqa: S105  (the placeholder shown instead of a secret)


def _parse_pairs(text: str) -> dict[str, str]:
    """`key = value` lines (the account form's config and secrets boxes)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        key, sep, value = raw.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


@routes.get("/settings/accounts")
@allow(ADMINS)
async def accounts_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        accounts = (await s.scalars(select(ChannelAccount).order_by(ChannelAccount.id))).all()
    return await render(
        request,
        "settings/accounts.html",
        {
            "accounts": accounts,
            "labels": deps.channel_labels,
            "kinds": sorted(deps.channel_labels),
            "public_url": deps.public_url.rstrip("/"),
            "checked": request.query.get("checked"),
            "check_ok": request.query.get("ok") == "1",
            "check_message": request.query.get("message", ""),
        },
    )


@routes.get("/settings/accounts/{id:\\d+}")
@allow(ADMINS)
async def account_page(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    async with deps.db.reading() as s:
        account = await s.get(ChannelAccount, int(request.match_info["id"]))
    if account is None:
        raise web.HTTPNotFound()
    hours = account.config.get("business_hours") or {}
    return await render(
        request,
        "settings/account.html",
        {
            "account": account,
            "labels": deps.channel_labels,
            "config_text": "\n".join(
                f"{k} = {v}" for k, v in account.config.items() if k != "business_hours"
            ),
            "secret_keys": sorted(account.secrets),
            "hours": hours,
            "weekdays": WEEKDAYS,
            "public_url": deps.public_url.rstrip("/"),
            "saved": request.query.get("saved"),
            "error": request.query.get("error"),
        },
    )


async def _seal(request: web.Request, values: dict[str, str]) -> dict[str, str]:
    deps = request.app[DEPS_KEY]
    if not values:
        return {}
    if deps.seal_secrets is None:
        # never store a secret in clear: refuse instead
        raise web.HTTPServiceUnavailable(text=gettext("Secret storage is not configured."))
    return deps.seal_secrets(values)


@routes.post("/settings/accounts")
@allow(ADMINS)
async def account_create(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    form = await request.post()
    kind = str(form.get("kind", ""))
    name = str(form.get("name", "")).strip()
    if kind not in deps.channel_labels or not name:
        raise web.HTTPFound("/settings/accounts?error=1")
    sealed = await _seal(request, _parse_pairs(str(form.get("secrets", ""))))
    async with deps.db.transaction() as s:
        account = ChannelAccount(
            kind=kind,
            name=name[:100],
            config=_parse_pairs(str(form.get("config", ""))),
            secrets=sealed,
            callback_token=secrets.token_urlsafe(24),
        )
        s.add(account)
        await s.flush()
        await audit(
            s,
            "account_created",
            actor_id=viewer_of(request).staff_id,
            target_type="account",
            target_id=account.id,
            detail={"kind": kind, "name": account.name},
            ip=request.remote,
        )
        account_id = account.id
    raise web.HTTPFound(f"/settings/accounts/{account_id}?saved=1")


@routes.post("/settings/accounts/{id:\\d+}")
@allow(ADMINS)
async def account_update(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    account_id = int(request.match_info["id"])
    form = await request.post()
    # an empty or masked secret field keeps the stored value
    changed = {
        k: v
        for k, v in _parse_pairs(str(form.get("secrets", ""))).items()
        if v and v != SECRET_MASK
    }
    sealed = await _seal(request, changed)
    async with deps.db.transaction() as s:
        account = await s.get(ChannelAccount, account_id)
        if account is None:
            raise web.HTTPNotFound()
        hours = account.config.get("business_hours")
        config = _parse_pairs(str(form.get("config", "")))
        if hours:
            config["business_hours"] = hours
        account.name = (str(form.get("name", "")).strip() or account.name)[:100]
        account.config = config
        account.secrets = {**account.secrets, **sealed}
        account.enabled = form.get("enabled") == "1"
        await audit(
            s,
            "account_updated",
            actor_id=viewer_of(request).staff_id,
            target_type="account",
            target_id=account_id,
            detail={"secrets_changed": sorted(changed), "enabled": account.enabled},
            ip=request.remote,
        )
    if deps.forget_account is not None:
        deps.forget_account(account_id)
    raise web.HTTPFound(f"/settings/accounts/{account_id}?saved=1")


@routes.post("/settings/accounts/{id:\\d+}/hours")
@allow(ADMINS)
async def business_hours(request: web.Request) -> web.Response:
    """Opening hours per weekday and holidays, read by the out-of-hours auto-reply."""
    deps = request.app[DEPS_KEY]
    account_id = int(request.match_info["id"])
    form = await request.post()
    week: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        start, end = str(form.get(f"{day}_start", "")), str(form.get(f"{day}_end", ""))
        if start and end:
            if not (_HHMM.match(start) and _HHMM.match(end)) or start >= end:
                raise web.HTTPFound(f"/settings/accounts/{account_id}?error=hours")
            week[day] = [start, end]
    holidays = sorted(
        {
            h.strip()
            for h in str(form.get("holidays", "")).split()
            if re.match(r"^\d{4}-\d{2}-\d{2}$", h.strip())
        }
    )
    async with deps.db.transaction() as s:
        account = await s.get(ChannelAccount, account_id)
        if account is None:
            raise web.HTTPNotFound()
        account.config = {
            **account.config,
            "business_hours": {"timezone": "Asia/Shanghai", "week": week, "holidays": holidays},
        }
    if deps.forget_account is not None:
        deps.forget_account(account_id)
    raise web.HTTPFound(f"/settings/accounts/{account_id}?saved=1")


@routes.post("/settings/accounts/{id:\\d+}/test")
@allow(ADMINS)
async def test_connection(request: web.Request) -> web.Response:
    deps = request.app[DEPS_KEY]
    account_id = int(request.match_info["id"])
    if deps.check_connection is None:
        return await render(
            request,
            "settings/check.html",
            {
                "ok": False,
                "message": gettext("Connection checks are not available."),
                "id": account_id,
            },
        )
    try:
        result = await deps.check_connection(account_id)
    except ValueError as exc:
        # adapters refuse incomplete settings when they are built (the channels' config
        # errors are ValueErrors): that is this check's answer, not a server error
        result = ConnectionResult(False, str(exc))
    return await render(
        request,
        "settings/check.html",
        {"ok": result.ok, "message": result.message, "id": account_id},
    )
