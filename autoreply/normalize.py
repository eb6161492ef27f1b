"""One text normalisation for rules, FAQ phrasings and incoming messages, so that
全角 / 半角 forms, letter case and surrounding punctuation never decide a match."""

from __future__ import annotations

import unicodedata

# stripped from both ends before an exact comparison: "你好！" equals "你好"
_EDGE = " \t\r\n\u3000!?.,;:~。！？，、；：…~·\"'“”‘’()（）[]【】<>《》"


def normalize(text: str) -> str:
    """NFKC (full-width → half-width) then casefold."""
    return unicodedata.normalize("NFKC", text).casefold()


def trim_edges(norm: str) -> str:
    """A normalised text without surrounding spaces and punctuation."""
    return norm.strip(_EDGE)


def exact_form(text: str) -> str:
    """The form compared by exact rules: normalised, edges trimmed."""
    return trim_edges(normalize(text))


def is_word_char(ch: str) -> bool:
    """ASCII letters and digits form words; a CJK character is a word on its own."""
    return ch.isascii() and ch.isalnum()
