"""jieba's dictionary grouped by first character answers as jieba's FREQ dict would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autoreply.dictionary import WordsByFirstCharacter

# jieba's FREQ: real words with their frequency, every prefix of a word with 0
FREQ = {"会": 500, "会员": 300, "会员卡": 40, "信": 20, "信用": 0, "信用卡": 90, "信用卡号码": 5}


def test_words_of_two_to_four_characters_are_words() -> None:
    words = WordsByFirstCharacter(FREQ)
    assert words.is_word("会员") and words.is_word("会员卡") and words.is_word("信用卡")


def test_prefix_with_frequency_zero_is_not_a_word() -> None:
    assert not WordsByFirstCharacter(FREQ).is_word("信用")


def test_string_outside_the_dictionary_is_not_a_word() -> None:
    assert not WordsByFirstCharacter(FREQ).is_word("员卡")


def test_added_word_becomes_a_word() -> None:
    words = WordsByFirstCharacter(FREQ)
    words.add("安途", 1000)
    assert words.is_word("安途") and words.is_word("会员")


def test_added_word_with_frequency_zero_stays_out() -> None:
    words = WordsByFirstCharacter(FREQ)
    words.add("安途", 0)
    assert not words.is_word("安途")


def _inside_naive(words: WordsByFirstCharacter, text: str, pos: int) -> bool:
    """text[pos] is in a 2–3 character window of `text` that is a dictionary word."""
    return any(
        words.is_word(text[start : start + size])
        for size in (2, 3)
        for start in range(max(0, pos - size + 1), pos + 1)
        if start + size <= len(text)
    )


@given(st.text(alphabet="会员卡信用号码安途的", max_size=8), st.integers(0, 7))
def test_context_tells_what_the_windows_around_a_character_tell(text: str, pos: int) -> None:
    words = WordsByFirstCharacter({**FREQ, "员卡": 3, "的会员": 7, "安途": 0})
    words.add("卡号", 9)  # added before the context is asked for: part of it
    if pos < len(text):
        assert words.context(text[pos]).holds(text, pos) == _inside_naive(words, text, pos)


def test_context_is_a_snapshot_kept_up_to_date_for_later_askers() -> None:
    words = WordsByFirstCharacter(FREQ)
    before = words.context("卡")
    words.add("卡包", 50)
    assert not before.holds("卡包", 0)
    assert words.context("卡").holds("卡包", 0) and words.context("包").holds("卡包", 1)
