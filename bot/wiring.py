"""The whole flow on one screen: which handlers run, in which order (STYLE.md §4)."""

from __future__ import annotations

from autoreply.cache import EngineCache
from autoreply.handler import AutoReplyHandler
from autoreply.settings import AutoReplySettings

from .pipeline import Handlers


def build_handlers(autoreply: AutoReplySettings | None = None) -> Handlers:
    handlers = Handlers()
    # 1. auto-reply: rules, FAQ, welcome/away, hand-off (claims the message when it answers)
    engine = EngineCache(autoreply or AutoReplySettings())
    handlers.on_message("autoreply", AutoReplyHandler(engine))
    return handlers
