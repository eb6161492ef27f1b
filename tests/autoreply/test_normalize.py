"""`normalize` takes a shortcut for plain Chinese text: it must give exactly what NFKC
followed by casefold gives, for every text."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from autoreply.normalize import _FOLDED, _NOT_OWN_FORM, normalize


def _reference(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


# what the shortcut handles, and characters next to it that it must leave to NFKC
_CHINESE_LIKE = st.text(
    st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x7F),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.characters(min_codepoint=0xFF00, max_codepoint=0xFFEF),
        st.sampled_from("、。\u3000\u0301\u0308\u0345\u1100\u1161\uac00ßİﬁ①㍿"),
    )
)


def test_characters_left_alone_are_their_own_form() -> None:
    for code in range(0x10000):
        ch = chr(code)
        if _NOT_OWN_FORM.search(ch) is None:
            assert _reference(ch) == ch, hex(code)


def test_folded_characters_become_one_ascii_character() -> None:
    for folded in _FOLDED.values():
        assert len(folded) == 1
        assert folded.isascii()
        assert _NOT_OWN_FORM.search(folded) is None


@given(_CHINESE_LIKE)
def test_chinese_like_text_normalises_as_nfkc_then_casefold(text: str) -> None:
    assert normalize(text) == _reference(text)


@given(st.text())
def test_any_text_normalises_as_nfkc_then_casefold(text: str) -> None:
    assert normalize(text) == _reference(text)
