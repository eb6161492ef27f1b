"""Sensitive-word alerts (敏感词, issue 11): an archived or 微信客服 message containing one
of the account's `sensitive_words` notifies the managers, once per message and manager.
Matching is case-insensitive substring matching (Chinese has no word boundaries)."""

from __future__ import annotations

from sqlalchemy import select

from conversations.access import Role
from conversations.handlers import MessageContext
from conversations.models import StaffUser
from conversations.notifications import notify_staff

WATCHED_KINDS = ("wecom.archive", "wecom.kf")


def found_words(text: str, words: list[str]) -> list[str]:
    hay = text.casefold()
    return [w for w in words if w.strip() and w.strip().casefold() in hay]


async def sensitive_word_alert(ctx: MessageContext) -> None:
    """Notify managers when a watched message contains a configured sensitive word."""
    if ctx.account.kind not in WATCHED_KINDS:
        return
    words = [str(w) for w in (ctx.account.config or {}).get("sensitive_words") or []]
    hits = found_words(ctx.message.text, words)
    if not hits:
        return
    managers = (
        await ctx.session.scalars(
            select(StaffUser).where(
                StaffUser.role.in_((Role.MANAGER.value, Role.ADMIN.value)),
                StaffUser.active.is_(True),
            )
        )
    ).all()
    who = ctx.message.staff_external_id or ctx.customer.display_name
    for manager in managers:
        await notify_staff(
            ctx.session,
            staff_id=manager.id,
            kind="sensitive_word",
            text=f"敏感词「{'、'.join(hits)}」出现在 {who} 的会话中 (sensitive word in a chat)",
            key=f"sensitive:{ctx.message.id}:{manager.id}",
            conversation_id=ctx.conversation.id,
        )
    ctx.notes.append(f"sensitive={','.join(hits)}")
