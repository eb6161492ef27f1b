"""Customers arriving through a channel QR code (add_external_contact with `State`) and
leaving it (del_follow_user). Registered in bot/wiring.py BEFORE "wecom.contacts":

- the customer gets the code's source tags, its salesperson as follow-up owner (when
  the customer has none) and the code as its source (`Customer.profile["source"]`);
- the add is logged for the code's statistics and the rota moves on;
- the code's own welcome (text + attachments) is queued under the welcome code's
  outbox key, so the default welcome of "wecom.contacts" finds the key taken and
  exactly one welcome goes out (WeCom accepts a welcome_code once).
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select

from channels.wecom.customers import upsert_follow
from channels.wecom.handlers import CONTACT_EVENT, contact_account
from channels.wecom.welcome import welcome_key, welcome_payload
from conversations.actions import queue_operation
from conversations.handlers import EventContext
from conversations.models import ChannelAccount, Customer
from conversations.types import Purpose
from tagging.tags import TagError, Why, tag_customer

from .models import ContactCode, ContactCodeEvent
from .service import plan_rotation

log = logging.getLogger(__name__)

SOURCE_PREFIX = "渠道活码"


class CodeContactHandler:
    """The event handler: add_external_contact with a code's State; del_follow_user of a
    code's customer. `tz` (settings.tz) is the zone the code's rota schedules live in."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    async def __call__(self, ctx: EventContext) -> None:
        change = ctx.event.event_type.removeprefix(CONTACT_EVENT)
        if change not in ("add_external_contact", "del_follow_user"):
            return
        payload = ctx.event.payload
        ext, userid = payload.get("ExternalUserID", ""), payload.get("UserID", "")
        if not ext or not userid:
            return
        account = await contact_account(ctx)
        if account is None:
            return
        if change == "del_follow_user":
            await _log_loss(ctx, account, ext, userid)
            return
        state = payload.get("State") or ""
        if not state:
            return
        code = await ctx.session.scalar(
            select(ContactCode).where(
                ContactCode.account_id == account.id, ContactCode.state == state
            )
        )
        if code is None:
            return  # a state set elsewhere (another tool, WeCom's admin console): not ours
        await _welcome_customer(ctx, account, code, ext, userid, self.tz)


async def _welcome_customer(
    ctx: EventContext,
    account: ChannelAccount,
    code: ContactCode,
    ext: str,
    userid: str,
    tz: ZoneInfo,
) -> None:
    when = ctx.event.occurred_at
    seen = await ctx.session.scalar(
        select(ContactCodeEvent.id).where(
            ContactCodeEvent.code_id == code.id,
            ContactCodeEvent.kind == "added",
            ContactCodeEvent.external_userid == ext,
            ContactCodeEvent.userid == userid,
            ContactCodeEvent.occurred_at == when,
        )
    )
    if seen is not None:
        return  # the same add pushed to the app's and the contact URL
    relation = await upsert_follow(
        ctx.session, account, ext, userid, state=code.state, added_at=when
    )
    customer = await ctx.session.get(Customer, relation.customer_id)
    assert customer is not None
    ctx.session.add(
        ContactCodeEvent(
            code_id=code.id,
            account_id=account.id,
            kind="added",
            external_userid=ext,
            userid=userid,
            customer_id=customer.id,
            occurred_at=when,
        )
    )
    if not (customer.profile or {}).get("source"):  # the first touch names the source
        customer.profile = {
            **(customer.profile or {}),
            "source": f"{SOURCE_PREFIX}:{code.name}",
            "source_code_id": code.id,
        }
    why = Why("wecom", reason=f"{SOURCE_PREFIX} {code.name}")
    for tag_id in code.tag_ids or []:
        try:
            await tag_customer(ctx.session, customer.id, int(tag_id), why)
        except TagError:
            log.warning("code %s: source tag %s no longer exists", code.id, tag_id)
    welcome_code = ctx.event.payload.get("WelcomeCode")
    if welcome_code and (code.welcome_text or code.welcome_attachments):
        await queue_operation(
            ctx.session,
            account.id,
            recipient=ext,
            purpose=Purpose.WELCOME,
            idempotency_key=welcome_key(account.id, welcome_code),
            payload=welcome_payload(
                welcome_code,
                code.welcome_text,
                userid,
                when.timestamp(),
                attachments=code.welcome_attachments or [],
            ),
        )
    code.last_userid = userid
    await plan_rotation(ctx.session, code, ctx.now, tz)
    log.info("event %s: customer %s came through code %s", ctx.event.id, customer.id, code.id)


async def _log_loss(ctx: EventContext, account: ChannelAccount, ext: str, userid: str) -> None:
    """A customer who came through a code deleted its salesperson: lost for that code."""
    added = await ctx.session.scalar(
        select(ContactCodeEvent)
        .where(
            ContactCodeEvent.account_id == account.id,
            ContactCodeEvent.kind == "added",
            ContactCodeEvent.external_userid == ext,
            ContactCodeEvent.userid == userid,
        )
        .order_by(ContactCodeEvent.occurred_at.desc())
        .limit(1)
    )
    if added is None:
        return
    when = ctx.event.occurred_at
    exists = await ctx.session.scalar(
        select(ContactCodeEvent.id).where(
            ContactCodeEvent.code_id == added.code_id,
            ContactCodeEvent.kind == "lost",
            ContactCodeEvent.external_userid == ext,
            ContactCodeEvent.userid == userid,
            ContactCodeEvent.occurred_at == when,
        )
    )
    if exists is None:
        ctx.session.add(
            ContactCodeEvent(
                code_id=added.code_id,
                account_id=account.id,
                kind="lost",
                external_userid=ext,
                userid=userid,
                customer_id=added.customer_id,
                occurred_at=when,
            )
        )
