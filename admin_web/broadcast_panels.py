"""Broadcasts' section on the customer page (issue 9): the broadcasts this customer was
in, newest first, with what happened to their copy (sent, delivered, skipped and why).

`bot.runtime.web_app` adds `customer_broadcasts_panel` to `ConsoleDeps.customer_panels`.
The broadcast names link to their pages only for the roles that may open them.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from broadcasts.models import Broadcast, BroadcastRecipient, BroadcastRun

from .deps import DEPS_KEY
from .policy import CAMPAIGNS
from .security import viewer_of

SHOWN = 20


async def customer_broadcasts_panel(request: web.Request, customer_id: int) -> str | None:
    """The latest broadcasts received by (or skipped for) this customer."""
    async with request.app[DEPS_KEY].db.reading() as s:
        rows = (
            await s.execute(
                select(Broadcast, BroadcastRun, BroadcastRecipient)
                .join(BroadcastRun, BroadcastRun.id == BroadcastRecipient.run_id)
                .join(Broadcast, Broadcast.id == BroadcastRun.broadcast_id)
                .where(BroadcastRecipient.customer_id == customer_id)
                .order_by(BroadcastRun.fire_time.desc(), BroadcastRecipient.id.desc())
                .limit(SHOWN)
            )
        ).all()
    return aiohttp_jinja2.render_string(
        "broadcasts/_customer_received.html",
        request,
        {"rows": rows, "linked": viewer_of(request).role in CAMPAIGNS, "shown": SHOWN},
    )
