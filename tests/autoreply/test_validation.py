"""Rules the console must refuse."""

from __future__ import annotations

import pytest

from autoreply.rules import InvalidRule, rule_from_fields


def test_bad_regex_is_refused() -> None:
    with pytest.raises(InvalidRule, match="bad regular expression"):
        rule_from_fields(id=1, match="regex", pattern="(", replies=["x"])


def test_keyword_rule_without_keywords_is_refused() -> None:
    with pytest.raises(InvalidRule, match="at least one keyword"):
        rule_from_fields(id=1, match="contains", keywords=["  "], replies=["x"])


def test_reply_rule_without_reply_is_refused() -> None:
    with pytest.raises(InvalidRule, match="at least one reply"):
        rule_from_fields(id=1, match="contains", keywords=["a"])


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(InvalidRule, match="time window"):
        rule_from_fields(
            id=1, match="contains", keywords=["a"], replies=["x"], time_window={"tz": "Mars/Base"}
        )
