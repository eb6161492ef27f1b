"""Import every package's models so the one metadata knows the whole schema."""

from __future__ import annotations

import admin_web.sidebar.materials
import autoreply.models
import broadcasts.models
import channels.wecom.codes.models
import channels.wecom.groups.models
import channels.wecom.models
import conversations.api_tokens
import conversations.consent
import conversations.handover
import conversations.models
import conversations.notes
import conversations.notifications
import conversations.search
import tagging.models
from conversations.db import Base

__all__ = ["include_name", "metadata"]

_MODEL_MODULES = (
    conversations.models,
    conversations.consent,
    conversations.notifications,
    conversations.notes,
    conversations.handover,
    conversations.api_tokens,
    conversations.search,
    autoreply.models,
    tagging.models,
    broadcasts.models,
    channels.wecom.models,
    admin_web.sidebar.materials,
    channels.wecom.codes.models,
    channels.wecom.groups.models,
)

metadata = Base.metadata

# tables made by dialect-specific DDL in a migration (SQLite FTS5 and its shadow tables):
# not in the models, so comparisons and autogenerate must not see them
UNMANAGED_TABLES = conversations.search.UNMANAGED_TABLES


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    return not (type_ == "table" and name in UNMANAGED_TABLES)
