"""Import every package's models so the one metadata knows the whole schema."""

from __future__ import annotations

import autoreply.models
import channels.wecom.models
import conversations.consent
import conversations.models
import conversations.notifications
from conversations.db import Base

__all__ = ["metadata"]

_MODEL_MODULES = (
    conversations.models,
    conversations.consent,
    conversations.notifications,
    autoreply.models,
    channels.wecom.models,
)

metadata = Base.metadata
