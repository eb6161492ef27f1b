"""Sandbox mode's customer simulator: type as a customer, watch it arrive and be answered."""

from __future__ import annotations

from aiohttp import web

from .deps import DEPS_KEY
from .i18n import gettext
from .render import render

routes = web.RouteTableDef()


@routes.get("/sandbox")
async def sandbox_page(request: web.Request) -> web.Response:
    sim = request.app[DEPS_KEY].simulator
    if sim is None:
        raise web.HTTPNotFound(text=gettext("Sandbox mode is off."))
    return await render(
        request,
        "sandbox.html",
        {
            "accounts": sim.accounts(),
            "delivered": sim.delivered(),
            "sent": request.query.get("sent"),
        },
    )


@routes.post("/sandbox/send")
async def sandbox_send(request: web.Request) -> web.Response:
    sim = request.app[DEPS_KEY].simulator
    if sim is None:
        raise web.HTTPNotFound()
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
