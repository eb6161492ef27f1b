"""Reply rules as plain values: what the console edits and the index compiles."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .normalize import normalize
from .templates import ReplyVariant


class MatchKind(enum.StrEnum):
    EXACT = "exact"  # the whole message equals one of the keywords
    CONTAINS = "contains"  # any of the keywords occurs (any-of)
    ALL = "all"  # every keyword occurs (all-of)
    REGEX = "regex"


class RuleAction(enum.StrEnum):
    REPLY = "reply"
    HANDOFF = "handoff"  # hand the conversation to a human (e.g. 转人工)


class Choice(enum.StrEnum):
    RANDOM = "random"
    ROUND_ROBIN = "round_robin"


class InvalidRule(ValueError):
    """A rule the console must refuse; `problems` are shown to the editor."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def _parse_hhmm(value: str) -> time:
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


@dataclass(frozen=True)
class TimeWindow:
    """Weekly window in a timezone; `end` before `start` spans midnight (22:00–06:00)."""

    tz: ZoneInfo
    days: frozenset[int]  # Monday = 0
    start: time
    end: time

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TimeWindow:
        days = data.get("days")
        return cls(
            tz=ZoneInfo(str(data.get("tz", "Asia/Shanghai"))),
            days=frozenset(int(d) for d in days) if days else frozenset(range(7)),
            start=_parse_hhmm(str(data.get("start", "00:00"))),
            end=_parse_hhmm(str(data.get("end", "23:59"))),
        )

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        now = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        if now >= self.start:  # evening part belongs to today
            return local.weekday() in self.days
        return (local.weekday() - 1) % 7 in self.days and now < self.end


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled-ready rule (a snapshot of a `KeywordRule` row; slots: a decision
    reads a few fields of a Rule that is rarely in the CPU cache, one line not three)."""

    id: int
    match: MatchKind
    keywords: tuple[str, ...]  # normalised
    priority: int = 100
    name: str = ""
    pattern: str | None = None
    action: RuleAction = RuleAction.REPLY
    replies: tuple[ReplyVariant, ...] = ()
    choice: Choice = Choice.RANDOM
    channel_kinds: frozenset[str] = frozenset()
    account_ids: frozenset[int] = frozenset()
    tag_ids: frozenset[int] = frozenset()
    window: TimeWindow | None = None
    compiled: re.Pattern[str] | None = field(default=None, compare=False)
    # no channel/account/tag/time condition: the decision skips the scope checks
    everywhere: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        unscoped = not (self.channel_kinds or self.account_ids or self.tag_ids or self.window)
        object.__setattr__(self, "everywhere", unscoped)

    @property
    def order(self) -> tuple[int, int]:
        return (self.priority, self.id)

    def channel_allowed(self, channel_kind: str) -> bool:
        """Empty scope = all channels; "wecom" covers "wecom.kf", "wecom.app"."""
        if not self.channel_kinds:
            return True
        family = channel_kind.split(".", 1)[0]
        return channel_kind in self.channel_kinds or family in self.channel_kinds


_MATCH_KINDS = {m.value: m for m in MatchKind}
_ACTIONS = {a.value: a for a in RuleAction}
_CHOICES = {c.value: c for c in Choice}


def rule_from_fields(
    *,
    id: int,
    match: str,
    keywords: Sequence[Any] = (),
    priority: int = 100,
    name: str = "",
    pattern: str | None = None,
    action: str = "reply",
    replies: Sequence[Any] = (),
    choice: str = "random",
    channel_kinds: Sequence[Any] = (),
    account_ids: Sequence[Any] = (),
    tag_ids: Sequence[Any] = (),
    time_window: Mapping[str, Any] | None = None,
) -> Rule:
    """Validate stored/edited fields into a `Rule`; raises `InvalidRule` listing problems."""
    problems: list[str] = []
    # plain dict lookups: Enum(value) is the slowest step of a 10,000-rule rebuild
    kind = _MATCH_KINDS.get(match)
    if kind is None:
        problems.append(f"unknown match kind {match!r}")
        kind = MatchKind.CONTAINS
    act = _ACTIONS.get(action)
    if act is None:
        problems.append(f"unknown action {action!r}")
        act = RuleAction.REPLY
    pick = _CHOICES.get(choice)
    if pick is None:
        problems.append(f"unknown reply choice {choice!r}")
        pick = Choice.RANDOM
    words = tuple(dict.fromkeys(w for w in (normalize(str(k)).strip() for k in keywords) if w))
    compiled: re.Pattern[str] | None = None
    if kind is MatchKind.REGEX:
        if not pattern:
            problems.append("a regex rule needs a pattern")
        else:
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                problems.append(f"bad regular expression: {exc}")
    elif not words:
        problems.append("a keyword rule needs at least one keyword")
    variants = tuple(ReplyVariant.from_json(r) for r in replies)
    if act is RuleAction.REPLY and not variants:
        problems.append("a reply rule needs at least one reply")
    window: TimeWindow | None = None
    if time_window:
        try:
            window = TimeWindow.from_json(time_window)
        except (ValueError, KeyError, ZoneInfoNotFoundError) as exc:
            problems.append(f"bad time window: {exc}")
    if problems:
        raise InvalidRule(problems)
    return Rule(
        id=id,
        match=kind,
        keywords=words,
        priority=priority,
        name=name,
        pattern=pattern,
        action=act,
        replies=variants,
        choice=pick,
        channel_kinds=frozenset(str(c) for c in channel_kinds),
        account_ids=frozenset(int(a) for a in account_ids),
        tag_ids=frozenset(int(t) for t in tag_ids),
        window=window,
        compiled=compiled,
    )
