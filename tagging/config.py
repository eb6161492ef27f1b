"""The `[tagging]` settings section, validated.

[tagging]
birthday_reminder_days = 1      # remind the salesperson this many days ahead

[tagging.value]                 # RFM / ABC, see tagging.value.ValueConfig
window_days = 365
recency_days = [7, 30, 90, 180]
frequency = [2, 4, 8, 16]
monetary_yuan = [500, 2000, 10000, 50000]
abc_shares = [0.7, 0.9]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .value import ValueConfig


@dataclass(frozen=True)
class TaggingSettings:
    value: ValueConfig = field(default_factory=ValueConfig)
    birthday_reminder_days: int = 1

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> TaggingSettings:
        unknown = set(section) - {"value", "birthday_reminder_days"}
        if unknown:
            raise ValueError(f"unknown [tagging] keys: {sorted(unknown)}")
        days = int(section.get("birthday_reminder_days", 1))
        if not 0 <= days <= 30:
            raise ValueError("birthday_reminder_days must be between 0 and 30")
        value = section.get("value", {})
        if not isinstance(value, Mapping):
            raise ValueError("[tagging.value] must be a table")
        return cls(value=ValueConfig.from_settings(value), birthday_reminder_days=days)
