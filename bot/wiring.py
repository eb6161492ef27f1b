"""The whole flow on one screen: which handlers run, in which order (STYLE.md §4)."""

from __future__ import annotations

from autoreply.cache import EngineCache
from autoreply.handler import AutoReplyHandler
from autoreply.settings import AutoReplySettings
from channels.email.handlers import EVENT_HANDLERS as EMAIL_EVENT_HANDLERS
from conversations.optout import handle_opt_out
from tagging.autotag import auto_tag, auto_tag_event

from .pipeline import Handlers


def build_handlers(autoreply: AutoReplySettings | None = None) -> Handlers:
    handlers = Handlers()
    # 1. opt-out words (退订, TD, STOP …) before anything may answer (claims the message)
    handlers.on_message("consent.opt_out", handle_opt_out)
    # 2. auto-tags from what the customer wrote (never replies; ignores claims)
    handlers.on_message("tagging.auto_tag", auto_tag)
    # 3. auto-reply: rules, FAQ, welcome/away, hand-off (claims the message when it answers)
    engine = EngineCache(autoreply or AutoReplySettings())
    handlers.on_message("autoreply", AutoReplyHandler(engine))
    # channel events
    handlers.on_event("tagging.auto_tag_event", auto_tag_event)
    for handler in EMAIL_EVENT_HANDLERS:  # bounces → undeliverable, "unsubscribe" mails
        handlers.on_event(f"email.{handler.__name__}", handler)
    return handlers
