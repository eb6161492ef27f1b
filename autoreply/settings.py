"""The `[autoreply]` settings section, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

DEFAULT_HANDOFF_KEYWORDS = (
    "人工", "转人工", "人工客服", "真人", "找客服", "客服电话", "agent", "human",
)  # fmt: skip
DEFAULT_NEGATIVE_KEYWORDS = (
    "投诉", "差评", "骗子", "骗人", "垃圾", "举报", "坑人", "太差", "什么破", "退钱",
    "气死", "生气", "12315", "消协", "律师", "起诉",
)  # fmt: skip
DEFAULT_QUIET_PHRASES = (
    "好", "好的", "好滴", "嗯", "嗯嗯", "哦", "哦哦", "谢谢", "谢谢你", "多谢", "收到",
    "知道了", "明白了", "ok", "okay", "thanks", "👌", "[ok]", "[握手]", "[抱拳]",
)  # fmt: skip


class AutoReplyConfigError(ValueError):
    pass


@dataclass(frozen=True)
class AutoReplySettings:
    faq_threshold: float = 0.4  # FAQ confidence needed to answer (see bench/faq_eval.py)
    max_replies_per_minute: int = 3  # bot messages per conversation (loop guard)
    human_idle: timedelta = timedelta(minutes=30)  # bot resumes after a human is silent this long
    repeat_window: timedelta = timedelta(minutes=10)  # same question again → hand off
    reload_check: timedelta = timedelta(seconds=2)  # how often the version row is read
    handoff_keywords: tuple[str, ...] = DEFAULT_HANDOFF_KEYWORDS
    negative_keywords: tuple[str, ...] = DEFAULT_NEGATIVE_KEYWORDS
    quiet_phrases: tuple[str, ...] = DEFAULT_QUIET_PHRASES
    away_text: str = "您好，现在是非工作时间，工作人员上班后会第一时间回复您。"
    handoff_text: str = "已为您转接人工客服，请稍候，工作人员会尽快回复您。"
    budget_text: str = "接下来将由人工客服为您继续服务，请稍候。"
    welcome_text: str = ""

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> AutoReplySettings:
        """Read `[autoreply]`; unknown keys are an error so typos do not pass silently."""
        known = {
            "faq_threshold",
            "max_replies_per_minute",
            "human_idle_minutes",
            "repeat_window_minutes",
            "reload_check_seconds",
            "handoff_keywords",
            "negative_keywords",
            "quiet_phrases",
            "away_text",
            "handoff_text",
            "budget_text",
            "welcome_text",
        }
        unknown = sorted(set(section) - known)
        if unknown:
            raise AutoReplyConfigError(f"unknown [autoreply] settings: {', '.join(unknown)}")
        base = cls()
        threshold = float(section.get("faq_threshold", base.faq_threshold))
        if not 0.0 < threshold <= 1.0:
            raise AutoReplyConfigError("autoreply.faq_threshold must be in (0, 1]")
        per_minute = int(section.get("max_replies_per_minute", base.max_replies_per_minute))
        if per_minute < 1:
            raise AutoReplyConfigError("autoreply.max_replies_per_minute must be at least 1")

        def words(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            value = section.get(key, default)
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise AutoReplyConfigError(f"autoreply.{key} must be a list of strings")
            return tuple(value)

        return cls(
            faq_threshold=threshold,
            max_replies_per_minute=per_minute,
            human_idle=timedelta(minutes=float(section.get("human_idle_minutes", 30))),
            repeat_window=timedelta(minutes=float(section.get("repeat_window_minutes", 10))),
            reload_check=timedelta(seconds=float(section.get("reload_check_seconds", 2))),
            handoff_keywords=words("handoff_keywords", base.handoff_keywords),
            negative_keywords=words("negative_keywords", base.negative_keywords),
            quiet_phrases=words("quiet_phrases", base.quiet_phrases),
            away_text=str(section.get("away_text", base.away_text)),
            handoff_text=str(section.get("handoff_text", base.handoff_text)),
            budget_text=str(section.get("budget_text", base.budget_text)),
            welcome_text=str(section.get("welcome_text", base.welcome_text)),
        )
