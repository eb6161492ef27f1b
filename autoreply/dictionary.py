"""jieba's general dictionary (词典) as the FAQ query side reads it: which 2–4 character
strings are words, grouped by their first character.

The query side asks "is this 2–4 character window a word?" a few times per message.
Asked of jieba's own `FREQ` dict (~500,000 keys, tens of MB spread over the heap) each
question lands on cold memory: measured on the benchmark, those few look-ups doubled the
cost of the whole FAQ search. Grouped by first character, the questions about one
message touch a handful of small sets, the same ones message after message.
"""

from __future__ import annotations

from collections.abc import Mapping

EMPTY: frozenset[str] = frozenset()
SHORTEST, LONGEST = 2, 4  # the window sizes the query side asks about


class WordsByFirstCharacter:
    """The words of 2–4 characters with a frequency above 0 (jieba keeps every prefix
    of a word with frequency 0), as first character → words."""

    def __init__(self, freq: Mapping[str, int]) -> None:
        grouped: dict[str, list[str]] = {}
        for word, f in freq.items():
            if f > 0 and SHORTEST <= len(word) <= LONGEST:
                grouped.setdefault(word[0], []).append(word)
        self.by_first: dict[str, frozenset[str]] = {
            first: frozenset(words) for first, words in grouped.items()
        }

    def add(self, word: str, freq: int) -> None:
        """Mirror `jieba.Tokenizer.add_word(word, freq)`."""
        if freq > 0 and SHORTEST <= len(word) <= LONGEST:
            # a new set rather than a mutated one: a reader in another thread sees
            # the old set or the new one, never a set being resized
            self.by_first[word[0]] = self.by_first.get(word[0], EMPTY) | {word}

    def is_word(self, text: str) -> bool:
        """Whether `text` (2–4 characters) is a dictionary word."""
        return text in self.by_first.get(text[0], EMPTY)
