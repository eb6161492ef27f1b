"""The matching machinery under the rules: the UTF-16 automaton, the regex gate, and
the rebuild that revalidates only edited rules."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from autoreply.automaton import WordAutomaton, wide_form
from autoreply.keyword_index import KeywordIndex
from autoreply.rules import Rule, rule_from_fields
from autoreply.store import RuleRow, compile_rule_rows


def test_automaton_reports_the_last_character_index_of_each_word() -> None:
    automaton: WordAutomaton[str] = WordAutomaton()
    for word in ("退款", "款式", "a"):
        automaton.add(word, word)
    automaton.build()
    assert automaton.matches("我要退款式a") == [(3, "退款"), (4, "款式"), (5, "a")]


def test_automaton_never_matches_across_character_boundaries() -> None:
    # 一 (00 00 4E 00) then 참 (00 00 CC 38): bytes 3–6 read 00 00 00 CC, which is Ì
    automaton: WordAutomaton[int] = WordAutomaton()
    automaton.add("\u00cc", 1)
    automaton.build()
    assert automaton.matches("一\ucc38") == []


def test_automaton_handles_characters_outside_the_basic_plane() -> None:
    automaton: WordAutomaton[str] = WordAutomaton()
    automaton.add("👌好", "ok")
    automaton.build()
    assert automaton.matches("嗯👌好的") == [(2, "ok")]


def test_automaton_counts_a_character_outside_the_basic_plane_as_one() -> None:
    automaton: WordAutomaton[str] = WordAutomaton()
    for word in ("退款", "👌"):
        automaton.add(word, word)
    automaton.build()
    assert automaton.matches("👌👌我要退款") == [(0, "👌"), (1, "👌"), (5, "退款")]


def test_automaton_never_matches_inside_a_surrogate_pair() -> None:
    # 👌 then U+0000 is D8 3D DC 4C 00 00 in UTF-16: bytes 1–2 read 3D DC (㷜) and
    # bytes 3–4 read 4C 00 (䰀), neither of them a character of the text
    automaton: WordAutomaton[str] = WordAutomaton()
    for word in ("㷜", "䰀"):
        automaton.add(word, word)
    automaton.build()
    assert automaton.matches("👌\u0000") == []
    assert automaton.matches("㷜") == [(0, "㷜")]


@given(st.text(alphabet="退款式a👌好\ud83d", max_size=12))
def test_automaton_given_the_wide_form_matches_as_given_the_text(text: str) -> None:
    # the engine encodes a message once for both automata (keywords and FAQ)
    automaton: WordAutomaton[str] = WordAutomaton()
    for word in ("退款", "款式", "a", "👌好"):
        automaton.add(word, word)
    automaton.build()
    assert automaton.matches(text, wide_form(text)) == automaton.matches(text)


def test_empty_automaton_matches_nothing() -> None:
    automaton: WordAutomaton[str] = WordAutomaton()
    automaton.build()
    assert automaton.matches("任何文字") == []


def test_regex_rules_still_match_behind_the_gate() -> None:
    index = KeywordIndex(
        [
            rule_from_fields(id=1, match="regex", pattern=r"订单\d{6}", replies=["a"]),
            rule_from_fields(id=2, match="regex", pattern=r"运单[a-z]{2}\d+", replies=["b"]),
        ]
    )
    found = [c.rule.id for c in index.candidates("我的运单sf12345到哪了")]
    assert found == [2]
    assert list(index.candidates("普通的问题")) == []


def test_regex_with_backreference_is_evaluated_without_the_gate() -> None:
    index = KeywordIndex(
        [
            rule_from_fields(id=1, match="regex", pattern=r"(哈)\1\1", replies=["a"]),
            rule_from_fields(id=2, match="regex", pattern=r"(\d)\1", replies=["b"]),
        ]
    )
    assert [c.rule.id for c in index.candidates("哈哈哈")] == [1]
    assert [c.rule.id for c in index.candidates("电话 1233")] == [2]


def _row(rule_id: int, keyword: str) -> RuleRow:
    # as read from the store: JSON columns still encoded
    return RuleRow(
        rule_id,
        {"match": "contains", "keywords": json.dumps([keyword]), "replies": '["回复"]'},
    )


def test_rebuild_reuses_rules_whose_row_did_not_change() -> None:
    first = compile_rule_rows([_row(1, "价格"), _row(2, "发货")])
    second = compile_rule_rows([_row(1, "价格"), _row(2, "到货")], first)
    assert second[1][1] is first[1][1]
    assert second[2][1].keywords == ("到货",)


def test_rebuild_drops_rules_no_longer_stored() -> None:
    first = compile_rule_rows([_row(1, "价格"), _row(2, "发货")])
    assert list(compile_rule_rows([_row(2, "发货")], first)) == [2]


def test_rebuild_skips_a_row_that_no_longer_validates() -> None:
    broken = RuleRow(3, {"match": "regex", "pattern": "(", "replies": '["x"]'})
    unreadable = RuleRow(4, {"match": "contains", "keywords": "[", "replies": '["x"]'})
    assert list(compile_rule_rows([_row(1, "价格"), broken, unreadable])) == [1]


_WORDS = ("退款", "发票", "价格", "快递", "pro", "agent")
_RULE_SPECS = st.lists(
    st.tuples(
        st.sampled_from(["contains", "all", "exact"]),
        st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3),
        st.integers(1, 5),  # priority: ties are broken by id
        st.sampled_from([[], ["sms"], ["wecom"]]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    specs=_RULE_SPECS,
    message=st.lists(st.sampled_from([*_WORDS, "的", "a", " ", "？"]), max_size=6).map("".join),
)
def test_first_in_scope_rule_is_the_first_candidate_in_scope(
    specs: list[tuple[str, list[str], int, list[str]]], message: str
) -> None:
    index = KeywordIndex(
        rule_from_fields(
            id=i, match=match, keywords=words, priority=priority, channel_kinds=kinds, replies=["r"]
        )
        for i, (match, words, priority, kinds) in enumerate(specs, start=1)
    )

    def refusal(rule: Rule, channel: str) -> str | None:
        return None if not rule.channel_kinds or channel in rule.channel_kinds else "channel"

    expected = next(
        (
            (c.rule, c.matched)
            for c in index.candidates(message)
            if refusal(c.rule, "wecom") is None
        ),
        None,
    )
    assert index.first(message, refusal, "wecom") == expected
