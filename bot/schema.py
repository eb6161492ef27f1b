"""Import every package's models so the one metadata knows the whole schema."""

from __future__ import annotations

import autoreply.models
import broadcasts.models
import channels.wecom.models
import conversations.consent
import conversations.models
import conversations.notifications
import tagging.models
from conversations.db import Base

__all__ = ["metadata"]

_MODEL_MODULES = (
    conversations.models,
    conversations.consent,
    conversations.notifications,
    autoreply.models,
    tagging.models,
    broadcasts.models,
    channels.wecom.models,
)

metadata = Base.metadata
