"""Which salesperson(s) a channel QR code offers right now (排班 / 轮流分配 / 备用员工).

WeCom's contact way holds a `user` list and WeCom itself decides nothing we can steer,
so crmbot rotates by rewriting that list (update_contact_way):

- a *single* code (type 1) shows exactly one person; in `round_robin` mode the person
  after the one who was just added, in `schedule` mode the first member on duty;
- a *multi* code (type 2) shows every member on duty and under their daily limit, and
  WeCom spreads the customers among them.

A member is eligible when the local time (Asia/Shanghai by default) falls in their
weekdays and hours and they were added fewer times today than their daily limit. When
nobody is eligible the backup person takes over; with no backup the list stays as it
is (WeCom refuses an empty user list).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
MAX_MEMBERS = 100  # members per contact way (doc 92228)
MODES = ("round_robin", "schedule")
TYPES = ("single", "multi")
ALL_WEEK = (0, 1, 2, 3, 4, 5, 6)


@dataclass(frozen=True)
class RotaMember:
    """One salesperson on a code's rota."""

    userid: str
    daily_limit: int = 0  # customers per day through this code; 0 = no limit
    weekdays: tuple[int, ...] = ALL_WEEK  # 0 = Monday
    start_hour: int = 0
    end_hour: int = 24  # exclusive

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RotaMember:
        return cls(
            userid=str(raw["userid"]),
            daily_limit=int(raw.get("daily_limit") or 0),
            weekdays=tuple(sorted({int(d) for d in raw.get("weekdays", ALL_WEEK)})),
            start_hour=int(raw.get("start_hour", 0)),
            end_hour=int(raw.get("end_hour", 24)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "userid": self.userid,
            "daily_limit": self.daily_limit,
            "weekdays": list(self.weekdays),
            "start_hour": self.start_hour,
            "end_hour": self.end_hour,
        }

    def on_duty(self, local: datetime) -> bool:
        return local.weekday() in self.weekdays and self.start_hour <= local.hour < self.end_hour

    def has_room(self, added_today: int) -> bool:
        return self.daily_limit <= 0 or added_today < self.daily_limit


@dataclass(frozen=True)
class Rota:
    code_type: str
    mode: str
    members: tuple[RotaMember, ...]
    backup_userid: str = ""
    tz: ZoneInfo = field(default=CHINA)

    def eligible(self, now: datetime, added_today: Mapping[str, int]) -> list[str]:
        local = now.astimezone(self.tz)
        return [
            m.userid
            for m in self.members
            if m.on_duty(local) and m.has_room(added_today.get(m.userid, 0))
        ]

    def users_now(
        self,
        now: datetime,
        added_today: Mapping[str, int],
        *,
        last_userid: str = "",
        current: Sequence[str] = (),
    ) -> list[str]:
        """The user list the code should carry now."""
        eligible = self.eligible(now, added_today)
        if not eligible:
            if self.backup_userid:
                return [self.backup_userid]
            return list(current) or [m.userid for m in self.members[:1]]
        if self.code_type == "multi":
            return eligible
        if self.mode == "round_robin" and last_userid:
            order = [m.userid for m in self.members]
            if last_userid in order:
                start = order.index(last_userid) + 1
                for userid in order[start:] + order[:start]:
                    if userid in eligible:
                        return [userid]
        return eligible[:1]

    def everyone(self) -> list[str]:
        """Every member and the backup: who must exist in the corp."""
        users = [m.userid for m in self.members]
        if self.backup_userid and self.backup_userid not in users:
            users.append(self.backup_userid)
        return users


def local_day_start(now: datetime, tz: ZoneInfo = CHINA) -> datetime:
    """Midnight of `now`'s local day (daily limits count from there)."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
