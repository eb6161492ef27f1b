"""The whole flow on one screen: which handlers run, in which order (STYLE.md §4)."""

from __future__ import annotations

from autoreply.keywords import keyword_autoreply

from .pipeline import Handlers


def build_handlers() -> Handlers:
    handlers = Handlers()
    # 1. the keyword auto-reply (claims the message when it answers)
    handlers.on_message("autoreply.keywords", keyword_autoreply)
    return handlers
