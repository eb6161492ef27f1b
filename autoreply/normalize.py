"""One text normalisation for rules, FAQ phrasings and incoming messages, so that
全角 / 半角 forms, letter case and surrounding punctuation never decide a match."""

from __future__ import annotations

import re
import unicodedata

# stripped from both ends before an exact comparison: "你好！" equals "你好"
_EDGE = " \t\r\n\u3000!?.,;:~。！？，、；：…~·\"'“”‘’()（）[]【】<>《》"

# Chinese messages are CJK ideographs, ASCII and full-width punctuation (，？). Each of
# these characters is its own NFKC and casefold form except A–Z and the full-width forms,
# which become one ASCII character that composes with nothing: in such a text, replacing
# those few gives what NFKC + casefold gives, in half the time (NFKC decomposes and
# recomposes the whole text as soon as one character is not already NFKC: ~2 µs)
_FOLDED = {
    chr(c): unicodedata.normalize("NFKC", chr(c)).casefold()
    for c in (*range(ord("A"), ord("Z") + 1), *range(0xFF01, 0xFF5F))
}
_NOT_OWN_FORM = re.compile(r"[^\x00-@\[-\x7f\u3001\u3002\u4e00-\u9fff]")


def normalize(text: str) -> str:
    """NFKC (full-width → half-width) then casefold."""
    if _NOT_OWN_FORM.search(text) is None:
        return text
    for ch in _NOT_OWN_FORM.findall(text):
        folded = _FOLDED.get(ch)
        if folded is None:
            return unicodedata.normalize("NFKC", text).casefold()
        text = text.replace(ch, folded)
    return text


def trim_edges(norm: str) -> str:
    """A normalised text without surrounding spaces and punctuation."""
    return norm.strip(_EDGE)


def exact_form(text: str) -> str:
    """The form compared by exact rules: normalised, edges trimmed."""
    return trim_edges(normalize(text))


def is_word_char(ch: str) -> bool:
    """ASCII letters and digits form words; a CJK character is a word on its own."""
    return ch.isascii() and ch.isalnum()
