"""The whole flow on one screen: which handlers run, in which order (STYLE.md §4)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from admin_web.deps import NavEntry
from autoreply.cache import EngineCache
from autoreply.handler import AutoReplyHandler
from autoreply.settings import AutoReplySettings
from channels.email.handlers import EVENT_HANDLERS as EMAIL_EVENT_HANDLERS
from channels.wecom.codes.handlers import CodeContactHandler
from channels.wecom.codes.rota import CHINA
from channels.wecom.groups.events import on_archived_group_message, on_group_chat_event
from channels.wecom.handlers import on_external_contact, queue_media_download
from channels.wecom.sensitive import sensitive_word_alert
from conversations.optout import handle_opt_out
from conversations.search import index_batch
from tagging.autotag import auto_tag, auto_tag_event
from tagging.tags import tags_of

from .kf_welcome import KfEnterSessionWelcome
from .pipeline import Handlers
from .send_failures import kf_send_fail_event


async def customer_tag_ids(session: AsyncSession, customer_id: int) -> frozenset[int]:
    """Tagging's assignments, for auto-reply rules scoped by customer tag."""
    return frozenset(tag.tag_id for tag in await tags_of(session, customer_id))


def console_nav() -> list[NavEntry]:
    """Console pages other packages add, and who sees them in the navigation."""
    everyone = frozenset({"admin", "manager", "sales", "marketer"})
    marketing = frozenset({"admin", "manager", "marketer"})
    return [
        NavEntry(
            "/autoreply/rules", "自动回复", "Auto-reply", frozenset({"admin", "manager"}), order=20
        ),
        NavEntry("/tagging/tags", "标签", "Tags", everyone, order=30),
        NavEntry(
            "/wecom/groups",
            "客户群",
            "Customer groups",
            frozenset({"admin", "manager", "sales"}),
            order=35,
        ),
        NavEntry("/tagging/segments", "客户分群", "Segments", marketing, order=40),
        NavEntry("/broadcasts", "群发", "Broadcasts", marketing, order=50),
        NavEntry("/tagging/stats", "客户画像", "Customer stats", marketing, order=60),
        NavEntry("/tagging/import", "导入客户", "Import", marketing, order=70),
        NavEntry("/wecom/codes", "渠道活码", "Channel QR codes", marketing, order=75),
    ]


def build_handlers(autoreply: AutoReplySettings | None = None, tz: ZoneInfo = CHINA) -> Handlers:
    """The handlers in order; `tz` is settings.tz (channel QR code rota schedules)."""
    handlers = Handlers()
    # 1. opt-out words (退订, TD, STOP …) before anything may answer (claims the message)
    handlers.on_message("consent.opt_out", handle_opt_out)
    # 2. auto-tags from what the customer wrote (never replies; ignores claims)
    handlers.on_message("tagging.auto_tag", auto_tag)
    # 3. WeCom: fetch media in the background; sensitive words alert managers (never claims)
    handlers.on_message("wecom.media", queue_media_download)
    handlers.on_message("wecom.sensitive_words", sensitive_word_alert)
    # 4. the history search index (jieba tokens; never claims)
    handlers.on_batch("search.index", index_batch)
    # 5. auto-reply: rules, FAQ, welcome/away, hand-off (claims the message when it answers)
    engine = EngineCache(autoreply or AutoReplySettings())
    handlers.on_message("autoreply", AutoReplyHandler(engine, tag_lookup=customer_tag_ids))
    # 微信客服 enter_session: the welcome goes with send_msg_on_event (20 s, once)
    handlers.on_event("wecom.kf_welcome", KfEnterSessionWelcome(engine))
    # channel events
    # 渠道活码 before wecom.contacts: its own welcome takes the welcome code first
    handlers.on_event("wecom.codes", CodeContactHandler(tz))
    handlers.on_event("wecom.contacts", on_external_contact)  # 客户联系: customers, owners, welcome
    handlers.on_event("wecom.groups", on_group_chat_event)  # 客户群: groups, members, history
    handlers.on_event("wecom.groups.archive", on_archived_group_message)  # group timelines
    handlers.on_event("tagging.auto_tag_event", auto_tag_event)
    handlers.on_event("wecom.kf_send_refused", kf_send_fail_event)  # → hand-off to a human
    for handler in EMAIL_EVENT_HANDLERS:  # bounces → undeliverable, "unsubscribe" mails
        handlers.on_event(f"email.{handler.__name__}", handler)
    return handlers
