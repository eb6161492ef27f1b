"""The whole flow on one screen: which handlers run, in which order (STYLE.md §4)."""

from __future__ import annotations

from autoreply.keywords import keyword_autoreply
from channels.email.handlers import EVENT_HANDLERS as EMAIL_EVENT_HANDLERS
from conversations.optout import handle_opt_out

from .pipeline import Handlers


def build_handlers() -> Handlers:
    handlers = Handlers()
    # 1. opt-out words (退订, TD, STOP …) before anything may answer (claims the message)
    handlers.on_message("consent.opt_out", handle_opt_out)
    # 2. the keyword auto-reply (claims the message when it answers)
    handlers.on_message("autoreply.keywords", keyword_autoreply)
    # channel events
    for handler in EMAIL_EVENT_HANDLERS:  # bounces → undeliverable, "unsubscribe" mails
        handlers.on_event(f"email.{handler.__name__}", handler)
    return handlers
