"""Rule kinds, priority, scope and time windows in the decision stage (no store)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from autoreply.engine import Engine, Facts, Outcome
from autoreply.faq import FaqIndex
from autoreply.rules import rule_from_fields
from autoreply.settings import AutoReplySettings

# Monday 2026-11-23 10:00 in Shanghai
MONDAY_10_SH = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
FACTS = Facts("wecom.kf", 1, MONDAY_10_SH)


def rule(rule_id: int, match: str, keywords: list[str], **kw: Any) -> Any:
    return rule_from_fields(
        id=rule_id, match=match, keywords=keywords, replies=[f"reply {rule_id}"], **kw
    )


def engine(*rules: Any) -> Engine:
    return Engine.build(rules, FaqIndex([]), AutoReplySettings())


def answer(eng: Engine, text: str, facts: Facts = FACTS) -> int | None:
    decision = eng.decide(text, facts)
    return decision.rule.id if decision.outcome is Outcome.RULE and decision.rule else None


def test_exact_rule_matches_whole_message_only() -> None:
    eng = engine(rule(1, "exact", ["价格"]))
    assert answer(eng, "价格！") == 1
    assert answer(eng, "价格多少") is None


def test_exact_rule_ignores_width_and_case() -> None:
    eng = engine(rule(1, "exact", ["VIP"]))
    assert answer(eng, "ｖｉｐ") == 1


def test_contains_rule_matches_inside_text() -> None:
    eng = engine(rule(1, "contains", ["退款"]))
    assert answer(eng, "我想申请退款可以吗") == 1


def test_contains_with_several_keywords_is_any_of() -> None:
    eng = engine(rule(1, "contains", ["发货", "物流"]))
    assert answer(eng, "物流到哪了") == 1
    assert answer(eng, "什么时候发货") == 1


def test_all_of_rule_needs_every_keyword() -> None:
    eng = engine(rule(1, "all", ["发票", "电子"]))
    assert answer(eng, "能开电子发票吗") == 1
    assert answer(eng, "能开发票吗") is None


def test_regex_rule_matches_pattern() -> None:
    eng = engine(
        rule_from_fields(id=1, match="regex", pattern=r"订单号?\s*\d{6,}", replies=["查单"])
    )
    assert answer(eng, "我的订单 12345678 到哪了") == 1
    assert answer(eng, "订单 123") is None


def test_ascii_keyword_respects_word_boundaries() -> None:
    eng = engine(rule(1, "contains", ["pro"]))
    assert answer(eng, "pro版多少钱") == 1
    assert answer(eng, "product price") is None


def test_lower_priority_number_wins() -> None:
    eng = engine(
        rule(1, "contains", ["价格"], priority=50), rule(2, "contains", ["价格"], priority=10)
    )
    assert answer(eng, "价格") == 2


def test_equal_priority_falls_back_to_rule_id() -> None:
    eng = engine(rule(7, "contains", ["价格"]), rule(3, "contains", ["价"]))
    assert answer(eng, "价格") == 3


def test_regex_rule_ranked_first_beats_keyword_rule() -> None:
    eng = engine(
        rule(1, "contains", ["订单"], priority=100),
        rule_from_fields(id=2, match="regex", pattern=r"\d{8}", replies=["x"], priority=5),
    )
    assert answer(eng, "订单12345678") == 2


def test_rule_scoped_to_another_channel_is_skipped() -> None:
    eng = engine(
        rule(1, "contains", ["价格"], channel_kinds=["sms"]),
        rule(2, "contains", ["价格"], priority=200),
    )
    assert answer(eng, "价格") == 2
    assert answer(eng, "价格", Facts("sms.aliyun", 1, MONDAY_10_SH)) == 1


def test_rule_scoped_to_account() -> None:
    eng = engine(rule(1, "contains", ["价格"], account_ids=[9]))
    assert answer(eng, "价格") is None
    assert answer(eng, "价格", Facts("wecom.kf", 9, MONDAY_10_SH)) == 1


def test_rule_scoped_to_customer_tag() -> None:
    eng = engine(rule(1, "contains", ["价格"], tag_ids=[5, 6]))
    assert eng.uses_tags
    assert answer(eng, "价格") is None
    assert answer(eng, "价格", Facts("wecom.kf", 1, MONDAY_10_SH, frozenset({6}))) == 1


def test_rule_outside_its_time_window_is_skipped() -> None:
    window = {"tz": "Asia/Shanghai", "days": [0, 1, 2, 3, 4], "start": "09:00", "end": "12:00"}
    eng = engine(rule(1, "contains", ["价格"], time_window=window))
    assert answer(eng, "价格") == 1
    assert (
        answer(eng, "价格", Facts("wecom.kf", 1, datetime(2026, 11, 23, 5, 0, tzinfo=UTC))) is None
    )


def test_overnight_window_covers_early_morning_of_next_day() -> None:
    window = {"tz": "Asia/Shanghai", "days": [0], "start": "22:00", "end": "06:00"}
    eng = engine(rule(1, "contains", ["价格"], time_window=window))
    tuesday_3am_sh = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    assert answer(eng, "价格", Facts("wecom.kf", 1, tuesday_3am_sh)) == 1


def test_handoff_keyword_beats_reply_rules() -> None:
    decision = engine(rule(1, "contains", ["退款"])).decide("退款转人工", FACTS)
    assert decision.outcome is Outcome.HANDOFF and decision.reason == "handoff_keyword"


def test_negative_sentiment_hands_off() -> None:
    decision = engine().decide("你们就是骗子", FACTS)
    assert decision.outcome is Outcome.HANDOFF and decision.reason == "negative_sentiment"


def test_handoff_action_rule_hands_off() -> None:
    r = rule_from_fields(id=1, match="contains", keywords=["经理"], action="handoff")
    decision = engine(r).decide("找你们经理", FACTS)
    assert (
        decision.outcome is Outcome.HANDOFF and decision.rule is not None and decision.rule.id == 1
    )


def test_acknowledgement_is_quiet() -> None:
    assert engine().decide("好的～", FACTS).outcome is Outcome.QUIET


def test_unknown_question_hands_off_for_low_confidence() -> None:
    decision = engine().decide("你们周末营业到几点", FACTS)
    assert decision.outcome is Outcome.HANDOFF and decision.reason == "low_confidence"


def test_explain_lists_out_of_scope_candidates_with_reasons() -> None:
    eng = engine(
        rule(1, "contains", ["价格"], channel_kinds=["email"]), rule(2, "all", ["价格", "多少"])
    )
    decision = eng.decide("价格多少", FACTS, explain=True)
    assert [(n.rule_id, n.refused is None) for n in decision.scope] == [(1, False), (2, True)]
    assert decision.rule is not None and decision.rule.id == 2
    assert decision.matched == ("价格", "多少")
