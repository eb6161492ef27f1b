"""Business hours per account: weekly hours, holidays and 调休 workdays, in the
account's timezone (a Shanghai team's 09:00 is 01:00 UTC)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

Span = tuple[time, time]


def _span(pair: Sequence[str]) -> Span:
    start, end = (time.fromisoformat(str(v)) for v in pair)
    if end <= start:
        raise ValueError(f"opening span must end after it starts: {pair!r}")
    return (start, end)


@dataclass(frozen=True)
class BusinessHours:
    tz: ZoneInfo
    weekly: Mapping[int, tuple[Span, ...]]  # Monday = 0; a missing day is closed
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # weekend days worked (调休)

    @classmethod
    def from_json(
        cls,
        tz: str,
        weekly: Mapping[str, Any],
        holidays: Sequence[Any] = (),
        workdays: Sequence[Any] = (),
    ) -> BusinessHours:
        return cls(
            tz=ZoneInfo(tz),
            weekly={int(day): tuple(_span(p) for p in spans) for day, spans in weekly.items()},
            holidays=frozenset(date.fromisoformat(str(d)) for d in holidays),
            workdays=frozenset(date.fromisoformat(str(d)) for d in workdays),
        )

    @property
    def configured(self) -> bool:
        """No weekly hours means no out-of-office replies at all."""
        return any(self.weekly.values())

    def _spans_on(self, day: date) -> tuple[Span, ...]:
        if day in self.holidays:
            return ()
        spans = self.weekly.get(day.weekday(), ())
        if not spans and day in self.workdays:
            # a worked weekend day keeps the hours of a normal weekday
            spans = next((s for d, s in sorted(self.weekly.items()) if d < 5 and s), ())
        return spans

    def is_open(self, at: datetime) -> bool:
        if not self.configured:
            return True
        local = at.astimezone(self.tz)
        now = local.time().replace(tzinfo=None)
        return any(start <= now < end for start, end in self._spans_on(local.date()))

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()
