"""When a broadcast fires: now, once at a local date/time, or by cron until an end.

Times are entered in the marketer's time zone and stored in UTC. Cron fire times come
from APScheduler 3's CronTrigger with two DST corrections of ours:
- a wall time that does not exist (spring forward) fires at the first real instant after it;
- a wall time that happens twice (fall back) fires once, not twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger


class ScheduleError(ValueError):
    """A schedule the marketer must fix (shown in the form)."""


@dataclass(frozen=True)
class Schedule:
    kind: str  # now | at | cron
    zone: ZoneInfo
    at: datetime | None = None  # aware, for "at"
    cron: str | None = None
    end: datetime | None = None  # aware; cron fires strictly before it

    @classmethod
    def parse(cls, spec: Mapping[str, Any], zone: str) -> Schedule:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"unknown time zone {zone!r}") from None
        kind = str(spec.get("kind", "now"))
        if kind == "now":
            return cls("now", tz)
        if kind == "at":
            return cls("at", tz, at=_local(spec.get("at"), tz, "at"))
        if kind == "cron":
            expr = str(spec.get("cron", "")).strip()
            try:
                CronTrigger.from_crontab(expr, timezone=tz)
            except ValueError as exc:
                raise ScheduleError(f"cron {expr!r}: {exc}") from None
            end = _local(spec["end"], tz, "end") if spec.get("end") else None
            return cls("cron", tz, cron=expr, end=end)
        raise ScheduleError(f"unknown schedule kind {kind!r}")

    def first_fire(self, now: datetime) -> datetime | None:
        """The first fire at or after `now` (confirm time); None if it is all in the past."""
        if self.kind == "now":
            return now
        if self.kind == "at":
            assert self.at is not None
            return self.at.astimezone(UTC)  # a past 'at' fires at once: the marketer meant it
        return self.next_fire(None, now)

    def next_fire(self, previous: datetime | None, now: datetime) -> datetime | None:
        """The fire after `previous` (cron only); None when the schedule has ended."""
        if self.kind != "cron":
            return None if previous is not None else self.first_fire(now)
        assert self.cron is not None
        trigger = CronTrigger.from_crontab(self.cron, timezone=self.zone)
        after = now if previous is None else max(now, previous)
        prev_local = previous.astimezone(self.zone) if previous is not None else None
        for _ in range(4):
            candidate: datetime | None = trigger.get_next_fire_time(
                prev_local, after.astimezone(self.zone)
            )
            if candidate is None:
                return None
            fire = candidate.astimezone(UTC)
            # fall back: APScheduler yields both folds of a repeated wall time
            if prev_local is not None and _wall(candidate) == _wall(prev_local):
                after = fire + timedelta(seconds=1)
                prev_local = candidate
                continue
            if previous is not None and fire <= previous:
                after = previous + timedelta(seconds=1)
                continue
            if self.end is not None and fire >= self.end:
                return None
            return fire
        return None


def _wall(value: datetime) -> tuple[int, ...]:
    return value.replace(tzinfo=None).timetuple()[:6]


def _local(raw: Any, tz: ZoneInfo, name: str) -> datetime:
    """A local 'YYYY-MM-DDTHH:MM' in the marketer's zone → aware UTC datetime."""
    if isinstance(raw, datetime):
        value = raw
    else:
        try:
            value = datetime.fromisoformat(str(raw))
        except ValueError:
            raise ScheduleError(f"{name}: {raw!r} is not a date and time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    # normalise through UTC so a wall time inside a DST gap becomes a real instant
    return value.astimezone(UTC)
