"""Lifecycle replies of an account: welcome on first contact, out-of-office outside
business hours, the hand-off notice. Settings give the defaults, an account overrides."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .hours import BusinessHours
from .settings import AutoReplySettings

ALWAYS_OPEN = BusinessHours(tz=ZoneInfo("Asia/Shanghai"), weekly={})


@dataclass(frozen=True)
class AccountProfile:
    hours: BusinessHours = ALWAYS_OPEN
    welcome_text: str = ""
    away_text: str = ""
    handoff_text: str = ""

    def welcome(self, settings: AutoReplySettings) -> str:
        return self.welcome_text or settings.welcome_text

    def away(self, settings: AutoReplySettings) -> str:
        return self.away_text or settings.away_text

    def handoff(self, settings: AutoReplySettings) -> str:
        return self.handoff_text or settings.handoff_text
