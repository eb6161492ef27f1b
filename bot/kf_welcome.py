"""微信客服 welcome on entering the chat: an enter_session event carrying a welcome_code
queues auto-reply's welcome text for that kf account as a conversation message sent
with kf/send_msg_on_event (once per code, within its 20 s window), instead of waiting for
the customer's first message and spending one of the 5 send_msg replies.
"""

from __future__ import annotations

from datetime import timedelta

from autoreply.cache import EngineCache
from channels.wecom.kf import WELCOME_CODE_SECONDS, WELCOME_OPERATION
from conversations.actions import conversation_for, queue_outbound, resolve_identity
from conversations.handlers import EventContext
from conversations.types import Purpose, SenderType

EVENT = "wecom.kf.enter_session"


class KfEnterSessionWelcome:
    """Event handler (register with `Handlers.on_event`, before auto-reply needs it)."""

    name = "wecom.kf_welcome"

    def __init__(self, cache: EngineCache) -> None:
        self.cache = cache

    async def __call__(self, ctx: EventContext) -> None:
        event = ctx.event
        code = str((event.payload or {}).get("welcome_code") or "")
        if event.event_type != EVENT or not code or not event.external_id:
            return
        snapshot = await self.cache.current(ctx.session)
        text = snapshot.profile(ctx.account.id).welcome(self.cache.settings)
        if not text:
            return
        identity = await resolve_identity(ctx.session, ctx.account, event.external_id)
        conversation = await conversation_for(ctx.session, ctx.account, identity)
        expires = event.occurred_at + timedelta(seconds=WELCOME_CODE_SECONDS)
        await queue_outbound(
            ctx.session,
            conversation,
            text=text,
            purpose=Purpose.WELCOME,
            idempotency_key=f"kf:welcome:{event.id}",
            payload={
                "operation": WELCOME_OPERATION,
                "code": code,
                "expires_at": expires.timestamp(),
            },
            sender_type=SenderType.BOT,
        )
