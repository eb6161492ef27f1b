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
from typing import NamedTuple

EMPTY: frozenset[str] = frozenset()
SHORTEST, LONGEST = 2, 4  # the window sizes the query side asks about


class Context(NamedTuple):
    """What may stand around one character `c` for it to be part of a 2–3 character
    dictionary word: c + x, x + c, c + xy, x + c + y (as "xy"), xy + c."""

    after2: frozenset[str]
    before2: frozenset[str]
    after3: frozenset[str]
    around3: frozenset[str]
    before3: frozenset[str]

    def holds(self, text: str, pos: int) -> bool:
        """Whether text[pos] is inside a 2–3 character dictionary word of `text`."""
        after = len(text) - pos - 1
        if after >= 1:
            if text[pos + 1] in self.after2:
                return True
            if after >= 2 and text[pos + 1 : pos + 3] in self.after3:
                return True
        if pos >= 1:
            before = text[pos - 1]
            if before in self.before2:
                return True
            if after >= 1 and before + text[pos + 1] in self.around3:
                return True
            if pos >= 2 and text[pos - 2 : pos] in self.before3:
                return True
        return False


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
        self._after_first: dict[str, list[str]] | None = None

    def add(self, word: str, freq: int) -> None:
        """Mirror `jieba.Tokenizer.add_word(word, freq)`."""
        if freq > 0 and SHORTEST <= len(word) <= LONGEST:
            # a new set rather than a mutated one: a reader in another thread sees
            # the old set or the new one, never a set being resized
            if word in self.by_first.get(word[0], EMPTY):
                return
            self.by_first[word[0]] = self.by_first.get(word[0], EMPTY) | {word}
            if self._after_first is not None and len(word) <= 3:
                for ch in set(word[1:]):
                    # a new list rather than an appended one (see above)
                    self._after_first[ch] = [*self._after_first.get(ch, ()), word]

    def context(self, ch: str) -> Context:
        """The words of 2–3 characters around `ch`, as `Context` (a snapshot: words added
        later are not in it). The query side asks one character about its neighbours a
        few times per message: one small set each time, not a look-up per window."""
        after2: set[str] = set()
        before2: set[str] = set()
        after3: set[str] = set()
        around3: set[str] = set()
        before3: set[str] = set()
        for word in self.by_first.get(ch, EMPTY):
            if len(word) == 2:
                after2.add(word[1])
            elif len(word) == 3:
                after3.add(word[1:])
        for word in self._containing().get(ch, ()):
            if len(word) == 2:
                if word[1] == ch:
                    before2.add(word[0])
            else:
                if word[1] == ch:
                    around3.add(word[0] + word[2])
                if word[2] == ch:
                    before3.add(word[:2])
        return Context(
            frozenset(after2),
            frozenset(before2),
            frozenset(after3),
            frozenset(around3),
            frozenset(before3),
        )

    def _containing(self) -> dict[str, list[str]]:
        """Character → the 2–3 character words holding it after their first character
        (made on first use: ~0.3 s over jieba's dictionary, then kept up to date)."""
        if self._after_first is None:
            index: dict[str, list[str]] = {}
            for words in self.by_first.values():
                for word in words:
                    if len(word) <= 3:
                        for ch in set(word[1:]):
                            index.setdefault(ch, []).append(word)
            self._after_first = index
        return self._after_first

    def is_word(self, text: str) -> bool:
        """Whether `text` (2–4 characters) is a dictionary word."""
        return text in self.by_first.get(text[0], EMPTY)
