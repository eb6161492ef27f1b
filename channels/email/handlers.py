"""Event handlers for email events (registered by bot/wiring.py).

`email.bounce`: a permanent bounce (5.x.x, action failed) puts the address on the
do-not-contact list with reason "bounce", so broadcasts stop mailing it.
`email.unsubscribe`: a List-Unsubscribe mailto request from the recipient.
"""

from __future__ import annotations

import logging

from conversations.consent import opt_out
from conversations.handlers import EventContext

log = logging.getLogger(__name__)

BOUNCE = "email.bounce"
UNSUBSCRIBE = "email.unsubscribe"


async def mark_bounced_addresses(ctx: EventContext) -> None:
    """Suppress every permanently bounced address of an `email.bounce` event."""
    if ctx.event.event_type != BOUNCE:
        return
    payload = ctx.event.payload
    for address in payload.get("permanent") or []:
        if not isinstance(address, str) or "@" not in address:
            continue
        new = await opt_out(
            ctx.session,
            channel="email",
            address=address.lower(),
            source="dsn",
            reason="bounce",
            evidence=str(payload.get("summary") or "")[:2000],
        )
        log.info(
            "email bounce account=%s event=%s address=%s newly_suppressed=%s",
            ctx.account.id,
            ctx.event.id,
            address,
            new,
        )


async def unsubscribe_by_mail(ctx: EventContext) -> None:
    """Suppress the sender of a List-Unsubscribe mailto request."""
    if ctx.event.event_type != UNSUBSCRIBE or not ctx.event.external_id:
        return
    new = await opt_out(
        ctx.session,
        channel="email",
        address=ctx.event.external_id.lower(),
        source="mailto",
        evidence=str(ctx.event.payload.get("subject") or "")[:2000],
    )
    log.info(
        "email unsubscribe by mail account=%s address=%s newly_suppressed=%s",
        ctx.account.id,
        ctx.event.external_id,
        new,
    )


EVENT_HANDLERS = [mark_bounced_addresses, unsubscribe_by_mail]
