"""The whole flow on one screen: which handlers run, in which order (STYLE.md §4)."""

from __future__ import annotations

from autoreply.cache import EngineCache
from autoreply.handler import AutoReplyHandler
from autoreply.settings import AutoReplySettings
from conversations.optout import handle_opt_out

from .pipeline import Handlers


def build_handlers(autoreply: AutoReplySettings | None = None) -> Handlers:
    handlers = Handlers()
    # 1. opt-out words (退订, TD, STOP …) before anything may answer (claims the message)
    handlers.on_message("consent.opt_out", handle_opt_out)
    # 2. auto-reply: rules, FAQ, welcome/away, hand-off (claims the message when it answers)
    engine = EngineCache(autoreply or AutoReplySettings())
    handlers.on_message("autoreply", AutoReplyHandler(engine))
    return handlers
