"""The `[broadcasts]` settings section, validated here (bot.config stays generic)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class BroadcastSettings:
    secret_key: str = ""  # signs click links
    public_url: str = "http://127.0.0.1:8080"
    timezone: str = "Asia/Shanghai"  # default for new broadcasts
    cap_max_per_customer: int = 2  # marketing messages per customer …
    cap_period_days: int = 7  # … within this many days
    reply_window_hours: int = 72  # replies attributed to a broadcast
    queue_horizon_seconds: float = 10.0  # how far ahead rows enter the outbox
    batch: int = 200  # recipients queued per transaction
    lease_seconds: float = 30.0  # a queuer's hold on a run
    approval_required: bool = False  # default for new broadcasts
    track_links: bool = True

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], *, secret_key: str, public_url: str, timezone: str
    ) -> BroadcastSettings:
        """Validate `[broadcasts]`; raises ValueError naming every bad key."""
        errors: list[str] = []
        values: dict[str, Any] = {"secret_key": secret_key, "public_url": public_url.rstrip("/")}
        values["timezone"] = str(section.get("timezone", timezone))
        try:
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"broadcasts.timezone: unknown time zone {values['timezone']!r}")
        ints = ("cap_max_per_customer", "cap_period_days", "reply_window_hours", "batch")
        for key in ints:
            if key in section:
                value = section[key]
                if not isinstance(value, int) or value < 0:
                    errors.append(f"broadcasts.{key}: expected a non-negative integer")
                else:
                    values[key] = value
        for key in ("queue_horizon_seconds", "lease_seconds"):
            if key in section:
                try:
                    values[key] = float(section[key])
                except (TypeError, ValueError):
                    errors.append(f"broadcasts.{key}: expected a number")
        for key in ("approval_required", "track_links"):
            if key in section:
                values[key] = bool(section[key])
        unknown = set(section) - set(cls.__dataclass_fields__) - {"timezone"}
        errors.extend(f"broadcasts.{key}: unknown setting" for key in sorted(unknown))
        if errors:
            raise ValueError("; ".join(errors))
        return cls(**values)
