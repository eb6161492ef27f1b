"""What the WeCom chat sidebar needs from the running crmbot (issue 14): the self-built
app it is registered on, the FAQ index, and broadcasts' one-to-one reminders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin_web.sidebar.views import WECOM_SDK_SCRIPTS, SidebarJsApi, SidebarServices
from autoreply.cache import EngineCache
from autoreply.settings import AutoReplySettings
from broadcasts.reminders import schedule_reminder
from channels.wecom.adapter import WeComAppAdapter
from channels.wecom.jsapi import JsApi
from conversations.db import utcnow
from conversations.models import ChannelAccount, Conversation

if TYPE_CHECKING:
    from .runtime import Services

# account kinds a follow-up message can reach a customer through (not staff-only apps,
# contact events or the read-only archive; SMS needs an approved template)
FOLLOW_UP_FAMILIES = {"wecom.kf": "wecom", "email": "email"}


def sidebar_services(services: Services) -> SidebarServices:
    """Settings section [sidebar]: account_id (the wecom.app account; default the first
    enabled one), timezone (for follow-ups), sdk_scripts (JS-SDK URLs)."""
    section = services.settings.section("sidebar")
    timezone = str(section.get("timezone") or "Asia/Shanghai")

    async def jsapi() -> SidebarJsApi | None:
        account_id = section.get("account_id")
        if account_id is None:
            async with services.db.reading() as s:
                account_id = await s.scalar(
                    select(ChannelAccount.id)
                    .where(ChannelAccount.kind == "wecom.app", ChannelAccount.enabled.is_(True))
                    .order_by(ChannelAccount.id)
                    .limit(1)
                )
        if account_id is None:
            return None
        loaded = await services.accounts.by_id(int(account_id))
        if loaded is None or not isinstance(loaded.adapter, WeComAppAdapter):
            return None
        return JsApi(loaded.adapter.api, loaded.adapter.agent_id)

    async def follow_up(
        session: AsyncSession, *, customer_id: int, at_local: str, text: str, actor_id: int
    ) -> int:
        rows = await session.execute(
            select(ChannelAccount.id, ChannelAccount.kind)
            .join(Conversation, Conversation.account_id == ChannelAccount.id)
            .where(Conversation.customer_id == customer_id, ChannelAccount.enabled.is_(True))
            .order_by(Conversation.last_message_at.desc().nulls_last())
        )
        order = [aid for aid, kind in rows if kind in FOLLOW_UP_FAMILIES]
        if not order:
            raise ValueError("这位客户没有可发送跟进消息的渠道 (no channel reaches this customer)")
        broadcast = await schedule_reminder(
            session,
            customer_id=customer_id,
            at_local=at_local,
            timezone=timezone,
            content={
                "wecom": {"msgtype": "text", "text": text},
                "email": {"subject": "跟进 / Follow-up", "text": text},
            },
            channel_order=list(dict.fromkeys(order)),
            actor_id=actor_id,
            policies=services.policies,
            audiences=services.audiences,
            now=utcnow(),
        )
        return broadcast.id

    return SidebarServices(
        jsapi=jsapi,
        faq=EngineCache(AutoReplySettings.from_section(services.settings.section("autoreply"))),
        follow_ups=follow_up,
        sdk_scripts=tuple(section.get("sdk_scripts", WECOM_SDK_SCRIPTS)),
    )
