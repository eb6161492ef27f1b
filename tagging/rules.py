"""Auto-tag rules (自动打标签): what a customer writes (keywords, jieba tokens, regex),
which channel they came through, and profile conditions. Matching is pure; the pipeline
handler in `autotag.py` applies the result."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jieba
from sqlalchemy.ext.asyncio import AsyncSession

from .models import TagRule
from .segments import parse
from .segments.errors import SegmentError

jieba.setLogLevel(logging.WARNING)

TEXT_KINDS = ("keyword", "token", "regex")
RULE_KINDS = (*TEXT_KINDS, "channel", "event", "profile")
# customers' messages are short; bounding the text bounds the regex work per message
MAX_TEXT = 2000
MAX_PATTERN = 500


class RuleError(ValueError):
    """A rule that cannot be saved as written (bad regex, empty keyword list …)."""


def keywords_of(pattern: str) -> list[str]:
    """Keywords separated by commas (either width), '|' or new lines: 报价,多少钱|价格."""
    parts = re.split(r"[,，|\n]", pattern)
    return [part.strip() for part in parts if part.strip()]


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def tokens_of(text: str) -> frozenset[str]:
    """jieba words of a message, case-folded (so 报价单 is not the word 报价)."""
    words: list[str] = jieba.lcut(text[:MAX_TEXT])
    return frozenset(word.strip().casefold() for word in words if word.strip())


def validate_rule(kind: str, pattern: str, config: dict[str, Any]) -> None:
    """Refuse a rule that could never match or cannot be evaluated."""
    if kind not in RULE_KINDS:
        raise RuleError(f"rule kind must be one of {', '.join(RULE_KINDS)}")
    if len(pattern) > MAX_PATTERN:
        raise RuleError(f"pattern longer than {MAX_PATTERN} characters")
    if kind in ("keyword", "token") and not keywords_of(pattern):
        raise RuleError("give at least one keyword, e.g. 报价,多少钱")
    if kind == "regex":
        try:
            re.compile(pattern)
        except re.error as exc:
            raise RuleError(f"invalid regular expression: {exc}") from exc
    if kind == "channel" and not (config.get("account_kind") or config.get("first_channel")):
        raise RuleError("a channel rule needs account_kind or first_channel")
    if kind == "event" and not config.get("event_type"):
        raise RuleError("an event rule needs event_type (e.g. add_external_contact)")
    if kind == "profile":
        try:
            parse(pattern)
        except SegmentError as exc:
            raise RuleError(f"invalid profile condition: {exc}") from exc


def match_text(kind: str, pattern: str, text: str, tokens: frozenset[str] | None) -> str | None:
    """The evidence (the keyword or the matched text) when a text rule matches, else None.

    `tokens` may be None when no token rule needs them (jieba is then not run)."""
    text = text[:MAX_TEXT]
    if kind == "keyword":
        folded = text.casefold()
        return next((kw for kw in keywords_of(pattern) if kw.casefold() in folded), None)
    if kind == "token":
        words = tokens if tokens is not None else tokens_of(text)
        return next((kw for kw in keywords_of(pattern) if kw.casefold() in words), None)
    if kind == "regex":
        found = _compiled(pattern).search(text)
        return found.group(0)[:100] if found else None
    return None


def _kind_matches(pattern: str, kind: str | None) -> bool:
    """sms matches sms.aliyun; wecom.kf matches only wecom.kf."""
    if not kind:
        return False
    return kind == pattern or kind.startswith(pattern + ".")


def match_channel(
    config: dict[str, Any], account_kind: str, first_channel: str | None
) -> str | None:
    """Evidence when a channel rule matches the message's account and the first channel."""
    wanted_account = config.get("account_kind")
    wanted_first = config.get("first_channel")
    if wanted_account and not _kind_matches(str(wanted_account), account_kind):
        return None
    if wanted_first and not _kind_matches(str(wanted_first), first_channel):
        return None
    parts = []
    if wanted_account:
        parts.append(f"account {account_kind}")
    if wanted_first:
        parts.append(f"first channel {first_channel}")
    return ", ".join(parts)


def match_event(
    config: dict[str, Any], account_kind: str, event_type: str, payload: dict[str, Any]
) -> str | None:
    """Evidence when an event rule matches a channel event: its type, optionally the
    account kind and payload values (e.g. WeCom's State of a 渠道活码 contact-way)."""
    if event_type != config.get("event_type"):
        return None
    wanted_account = config.get("account_kind")
    if wanted_account and not _kind_matches(str(wanted_account), account_kind):
        return None
    wanted: dict[str, Any] = config.get("payload") or {}
    if any(str(payload.get(key)) != str(value) for key, value in wanted.items()):
        return None
    return f"event {event_type}" + "".join(f" {k}={v}" for k, v in sorted(wanted.items()))


@dataclass(frozen=True)
class RuleView:
    """A rule as the matcher needs it (detached from the session)."""

    id: int
    name: str
    tag_id: int
    kind: str
    pattern: str
    config: dict[str, Any]


async def create_rule(
    session: AsyncSession,
    *,
    name: str,
    tag_id: int,
    kind: str,
    pattern: str = "",
    config: dict[str, Any] | None = None,
    priority: int = 100,
) -> TagRule:
    """Save a validated auto-tag rule."""
    config = dict(config or {})
    validate_rule(kind, pattern, config)
    rule = TagRule(
        name=name, tag_id=tag_id, kind=kind, pattern=pattern, config=config, priority=priority
    )
    session.add(rule)
    await session.flush()
    return rule


def needs_tokens(rules: Sequence[RuleView]) -> bool:
    return any(rule.kind == "token" for rule in rules)
