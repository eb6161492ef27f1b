"""Event handlers for 客户联系 (change_external_contact, doc 92130) and the media
download queue. Registered in bot/wiring.py; each runs inside the pipeline's one
transaction and does no network I/O (welcome messages and downloads go to the outbox
and the media job).
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from conversations.actions import queue_operation
from conversations.handlers import EventContext, MessageContext
from conversations.models import ChannelAccount, Customer
from conversations.notifications import notify_staff
from conversations.types import Purpose

from .customers import end_follow, staff_by_userid, upsert_follow
from .media import media_ref
from .models import MediaFetch, TransferRecord
from .welcome import welcome_key, welcome_payload, welcome_template

log = logging.getLogger(__name__)

CONTACT_EVENT = "wecom.change_external_contact."
WECOM_KINDS = ("wecom.app", "wecom.kf", "wecom.contact", "wecom.archive")


async def on_external_contact(ctx: EventContext) -> None:
    """Customers and follow relations from change_external_contact events."""
    event = ctx.event
    if not event.event_type.startswith(CONTACT_EVENT):
        return
    account = await contact_account(ctx)
    if account is None:
        log.warning(
            "客户联系 event %s on account %s: no wecom.contact account for this corp; stored only",
            event.id,
            ctx.account.id,
        )
        return
    change = event.event_type.removeprefix(CONTACT_EVENT)
    payload = event.payload
    ext = payload.get("ExternalUserID", "")
    userid = payload.get("UserID", "")
    if not ext or not userid:
        log.warning("event %s without UserID/ExternalUserID: stored only", event.id)
        return
    if change in ("add_external_contact", "add_half_external_contact"):
        added = await upsert_follow(
            ctx.session,
            account,
            ext,
            userid,
            state=payload.get("State") or "",
            added_at=event.occurred_at,
        )
        added.needs_refresh = True  # name, unionid, remark: fetched by refresh_marked
        code = payload.get("WelcomeCode")
        # a channel QR code's own welcome (codes.handlers, registered before this one)
        # already holds this welcome code's key: the default one is then not queued
        template = welcome_template(account.config, userid)
        if code and template:
            await queue_operation(
                ctx.session,
                account.id,
                recipient=ext,
                purpose=Purpose.WELCOME,
                idempotency_key=welcome_key(account.id, code),
                payload=welcome_payload(code, template, userid, event.occurred_at.timestamp()),
            )
    elif change == "edit_external_contact":
        relation = await upsert_follow(ctx.session, account, ext, userid)
        relation.needs_refresh = True  # remark/tags changed: the sync job fetches them
    elif change == "del_external_contact":
        transferred = payload.get("Source") == "DELETE_BY_TRANSFER"
        await end_follow(
            ctx.session,
            account,
            ext,
            userid,
            "transferred" if transferred else "deleted_by_staff",
            event.occurred_at,
        )
    elif change == "del_follow_user":
        ended = await end_follow(
            ctx.session, account, ext, userid, "deleted_by_customer", event.occurred_at
        )
        await _loss_alert(ctx, account, userid, ended.customer_id if ended else None)
    elif change == "transfer_fail":
        await ctx.session.execute(
            update(TransferRecord)
            .where(
                TransferRecord.account_id == account.id,
                TransferRecord.external_userid == ext,
                TransferRecord.takeover_userid == userid,
                TransferRecord.status.in_(("requested", "waiting")),
            )
            .values(status="failed", reason=payload.get("FailReason") or "transfer_fail")
        )


async def contact_account(ctx: EventContext) -> ChannelAccount | None:
    """Where 客户联系 data lives: the event's own account, or — when WeCom pushed the event
    to a self-built app listed under 可调用应用 — the corp's wecom.contact account."""
    if ctx.account.kind == "wecom.contact":
        return ctx.account
    if ctx.account.kind != "wecom.app":
        return None
    corp = (ctx.account.config or {}).get("corp_id")
    rows = (
        await ctx.session.scalars(
            select(ChannelAccount)
            .where(ChannelAccount.kind == "wecom.contact", ChannelAccount.enabled.is_(True))
            .order_by(ChannelAccount.id)
        )
    ).all()
    return next((r for r in rows if (r.config or {}).get("corp_id") == corp), None)


async def _loss_alert(
    ctx: EventContext, account: ChannelAccount, userid: str, customer_id: int | None
) -> None:
    """删人提醒: tell the salesperson a customer deleted them."""
    staff = await staff_by_userid(ctx.session, userid)
    if staff is None:
        return
    name = ""
    if customer_id is not None:
        customer = await ctx.session.get(Customer, customer_id)
        name = customer.display_name if customer is not None else ""
    await notify_staff(
        ctx.session,
        staff_id=staff.id,
        kind="lost_customer",
        text=f"客户「{name or ctx.event.external_id}」已将你删除 (a customer removed you)",
        # the same event may reach both the app's and the contact URL: one alert
        key=f"lost:{account.id}:{ctx.event.external_id}:{userid}:{int(ctx.event.occurred_at.timestamp())}",
    )


async def queue_media_download(ctx: MessageContext) -> None:
    """Media messages (image/voice/video/file) get a download row for the media job."""
    if ctx.account.kind not in WECOM_KINDS:
        return
    ref = media_ref(ctx.message.payload)
    if ref is None:
        return
    exists = await ctx.session.scalar(
        select(MediaFetch.id).where(MediaFetch.message_id == ctx.message.id)
    )
    if exists is None:
        ctx.session.add(
            MediaFetch(message_id=ctx.message.id, account_id=ctx.account.id, media_id=ref)
        )
