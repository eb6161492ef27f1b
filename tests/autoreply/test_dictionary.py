"""jieba's dictionary grouped by first character answers as jieba's FREQ dict would."""

from __future__ import annotations

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
