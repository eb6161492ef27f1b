"""Sandbox mode's customer simulator: type as a customer, watch it arrive and be answered;
and try the growth tools: scan a channel QR code as a new customer, let a customer join
or leave a customer group (each pushed through the WeCom simulator as WeCom pushes it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select

from channels.wecom.codes.models import ContactCode

from .deps import DEPS_KEY, CustomerSimulator
from .i18n import gettext
from .policy import STAFF, allow
from .render import render

routes = web.RouteTableDef()


@runtime_checkable
class GrowthSimulator(Protocol):
    """The sandbox's 客户联系 side (bot.sandbox.WeComSandbox): QR codes and groups."""

    def growth_account(self) -> tuple[int, str] | None: ...

    async def scan_code(self, state: str, name: str) -> tuple[str, int]: ...

    def groups(self) -> Sequence[tuple[str, str, str, list[str]]]: ...

    async def join_group(self, owner: str, group_name: str, customer: str) -> int: ...

    async def leave_group(self, chat_id: str, customer: str) -> int: ...


def _simulator(request: web.Request) -> CustomerSimulator:
    sim = request.app[DEPS_KEY].simulator
    if sim is None:
        raise web.HTTPNotFound(text=gettext("Sandbox mode is off."))
    return sim


def _growth(request: web.Request) -> tuple[GrowthSimulator, int]:
    sim = _simulator(request)
    account = sim.growth_account() if isinstance(sim, GrowthSimulator) else None
    if not isinstance(sim, GrowthSimulator) or account is None:
        raise web.HTTPNotFound(text=gettext("The sandbox has no customer contact account."))
    return sim, account[0]


def _back(**outcome: str | int) -> web.HTTPFound:
    return web.HTTPFound("/sandbox?" + urlencode(outcome))


@routes.get("/sandbox")
@allow(STAFF)
async def sandbox_page(request: web.Request) -> web.Response:
    sim = _simulator(request)
    growth = sim if isinstance(sim, GrowthSimulator) else None
    account = growth.growth_account() if growth is not None else None
    codes: list[ContactCode] = []
    if account is not None:
        async with request.app[DEPS_KEY].db.reading() as s:
            codes = list(
                (
                    await s.scalars(
                        select(ContactCode)
                        .where(ContactCode.account_id == account[0], ContactCode.status == "active")
                        .order_by(ContactCode.id.desc())
                    )
                ).all()
            )
    return await render(
        request,
        "sandbox.html",
        {
            "accounts": sim.accounts(),
            "delivered": sim.delivered(),
            "sent": request.query.get("sent"),
            "growth": account,
            "codes": codes,
            "groups": growth.groups() if growth is not None and account else [],
            "scanned": request.query.get("scanned"),
            "problem": request.query.get("problem"),
            "group_status": request.query.get("group"),
        },
    )


@routes.post("/sandbox/send")
@allow(STAFF)
async def sandbox_send(request: web.Request) -> web.Response:
    sim = _simulator(request)
    form = await request.post()
    text = str(form.get("text", "")).strip()
    customer = str(form.get("customer", "")).strip() or "sandbox_customer"
    try:
        account_id = int(str(form.get("account", "")))
    except ValueError:
        raise web.HTTPBadRequest(text="account") from None
    if text:
        status = await sim.send_as_customer(account_id, customer, text)
        raise web.HTTPFound(f"/sandbox?sent={status}")
    raise web.HTTPFound("/sandbox")


@routes.post("/sandbox/scan")
@allow(STAFF)
async def sandbox_scan(request: web.Request) -> web.Response:
    """A new customer scans a channel QR code (渠道活码)."""
    growth, _account = _growth(request)
    form = await request.post()
    state = str(form.get("state", "")).strip()
    name = str(form.get("name", "")).strip() or gettext("Sandbox customer")
    try:
        userid, status = await growth.scan_code(state, name)
    except LookupError:
        raise _back(problem="no_code") from None
    raise _back(scanned=f"{name} → {userid}", sent=status)


@routes.post("/sandbox/group")
@allow(STAFF)
async def sandbox_group(request: web.Request) -> web.Response:
    """A customer joins (scans the group QR code) or leaves a customer group (客户群)."""
    growth, _account = _growth(request)
    form = await request.post()
    customer = str(form.get("customer", "")).strip()
    if not customer:
        raise _back(problem="no_customer")
    try:
        if form.get("action") == "leave":
            status = await growth.leave_group(str(form.get("chat_id", "")), customer)
        else:
            owner = str(form.get("owner", "")).strip()
            group_name = str(form.get("group_name", "")).strip() or gettext("Customer group")
            status = await growth.join_group(owner, group_name, customer)
    except LookupError:
        raise _back(problem="no_member") from None
    raise _back(group=status)
