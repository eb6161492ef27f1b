"""When marketing SMS may go out (营销短信发送时段), per account.

Default 08:00–21:00 Asia/Shanghai: the stricter of the providers' rules (Huawei states
8–21; Tencent rejects marketing outside 08:00–22:00 with
FailedOperation.MarketingSendTimeConstraint). An account narrows or moves it with

    "marketing_window": {"start": "09:00", "end": "20:30", "timezone": "Asia/Shanghai"}

and a Tencent account can never be widened past 08:00–22:00. The broadcasts helper
defers (never drops) marketing sends that fall outside; transactional messages ignore it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_START = time(8, 0)
DEFAULT_END = time(21, 0)
DEFAULT_TIMEZONE = "Asia/Shanghai"
# what the gateway itself enforces; a configured window is clipped to it
PROVIDER_WINDOW = {"sms.tencent": (time(8, 0), time(22, 0))}


@dataclass(frozen=True)
class MarketingWindow:
    start: time
    end: time
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def allows(self, moment: datetime) -> bool:
        """True if a marketing SMS may be sent at `moment` (an aware datetime)."""
        local = moment.astimezone(self.tz).time()
        return self.start <= local < self.end

    def next_open(self, moment: datetime) -> datetime:
        """`moment` itself when allowed, else the next opening of the window (UTC)."""
        if self.allows(moment):
            return moment
        local = moment.astimezone(self.tz)
        opening = datetime.combine(local.date(), self.start, tzinfo=self.tz)
        if local.time() >= self.end:
            opening = datetime.combine(local.date() + timedelta(days=1), self.start, self.tz)
        return opening.astimezone(UTC)


def _clock(value: Any, default: time, field: str) -> time:
    if value is None:
        return default
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"marketing_window.{field} must look like 08:00, not {value!r}") from None


def marketing_window(account_config: Mapping[str, Any], kind: str = "") -> MarketingWindow:
    """The account's marketing window (pure: config in, window out; ValueError if bad)."""
    raw = account_config.get("marketing_window") or {}
    if not isinstance(raw, Mapping):
        raise ValueError("marketing_window must be a table with start, end, timezone")
    start = _clock(raw.get("start"), DEFAULT_START, "start")
    end = _clock(raw.get("end"), DEFAULT_END, "end")
    timezone = str(raw.get("timezone", DEFAULT_TIMEZONE))
    ZoneInfo(timezone)  # raises for an unknown zone
    if kind in PROVIDER_WINDOW:
        if timezone != DEFAULT_TIMEZONE:
            # the gateway's own 08:00–22:00 is Beijing time; another zone cannot be clipped
            raise ValueError(f"{kind} marketing windows are in {DEFAULT_TIMEZONE} time")
        low, high = PROVIDER_WINDOW[kind]
        start, end = max(start, low), min(end, high)
    if start >= end:
        raise ValueError("marketing_window.start must be before end (same day)")
    return MarketingWindow(start, end, timezone)
