"""The matching machinery under the rules: the word automaton, the regex gate, and
the rebuild that revalidates only edited rules."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoreply.automaton import WordAutomaton
from autoreply.keyword_index import KeywordIndex
from autoreply.rules import Rule, rule_from_fields
from autoreply.store import RuleRow, compile_rule_rows


def test_automaton_reports_the_last_character_index_of_each_word() -> None:
    automaton: WordAutomaton[str] = WordAutomaton()
    for word in ("退款", "款式", "a"):
        automaton.add(word, word)
    automaton.build()
    assert automaton.matches("我要退款式a") == [(3, "退款"), (4, "款式"), (5, "a")]


def test_automaton_reports_overlapping_words_by_end_then_longest_first() -> None:
    # the FAQ scan relies on this order: a longer term is met before its suffixes
    automaton: WordAutomaton[str] = WordAutomaton()
    for word in ("卡", "会员卡", "员卡", "会员"):
        automaton.add(word, word)
    automaton.build()
    assert automaton.matches("办会员卡") == [
        (2, "会员"),
        (3, "会员卡"),
        (3, "员卡"),
        (3, "卡"),
    ]
    occurrences = automaton.occurrences("办会员卡")
    assert [(automaton.values[i], start, end) for i, start, end in occurrences] == [
        ("会员", 1, 3),
        ("会员卡", 1, 4),
        ("员卡", 2, 4),
        ("卡", 3, 4),
    ]


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


def test_automaton_reads_a_lone_surrogate_as_one_character_of_no_word() -> None:
    # JSON may carry "\ud83d" alone: it cannot be UTF-8, and must not shift positions
    automaton: WordAutomaton[str] = WordAutomaton()
    for word in ("退款", "款"):
        automaton.add(word, word)
    automaton.build()
    assert automaton.matches("\ud83d退款\udc4c款") == [(2, "退款"), (2, "款"), (4, "款")]


@given(st.text(alphabet="退款式a👌好\ud83d", max_size=12))
def test_automaton_finds_what_a_naive_search_finds(text: str) -> None:
    words = ("退款", "款式", "a", "👌好", "款")
    automaton: WordAutomaton[str] = WordAutomaton()
    for word in words:
        automaton.add(word, word)
    automaton.build()
    naive = sorted(
        (
            (end - 1, word)
            for word in words
            for end in range(len(text) + 1)
            if end >= len(word) and text[end - len(word) : end] == word
        ),
        key=lambda found: (found[0], -len(found[1])),
    )
    assert automaton.matches(text) == naive


def test_automaton_refuses_an_empty_word() -> None:
    automaton: WordAutomaton[str] = WordAutomaton()
    with pytest.raises(ValueError, match="empty"):
        automaton.add("", "nothing")


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
