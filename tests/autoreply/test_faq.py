"""FAQ search: jieba-indexed phrasings, synonyms, BM25 and the confidence threshold."""

from __future__ import annotations

import pytest

from autoreply.faq import FaqDoc, FaqIndex
from autoreply.settings import AutoReplySettings
from autoreply.templates import ReplyVariant

THRESHOLD = AutoReplySettings().faq_threshold


def doc(i: int, slug: str, question: str, *alts: str) -> FaqDoc:
    return FaqDoc(i, slug, question, alts, ReplyVariant(f"answer {slug}"))


@pytest.fixture(scope="module")
def index() -> FaqIndex:
    return FaqIndex(
        [
            doc(1, "refund", "怎么申请退款", "退款流程是什么", "我想退货"),
            doc(2, "vip", "会员卡怎么办理", "如何开通会员", "办会员要多少钱"),
            doc(3, "pro-price", "云盒专业版多少钱", "专业版价格"),
            doc(4, "shipping", "下单后多久发货", "什么时候发货"),
        ],
        synonyms={"云盒专业版": ["云盒pro", "pro版"]},
    )


def best(index: FaqIndex, text: str) -> tuple[str, float]:
    found = index.search(text)
    return (found[0].entry.slug, found[0].confidence) if found else ("", 0.0)


def test_paraphrase_finds_its_entry(index: FaqIndex) -> None:
    assert best(index, "退款要怎么弄")[0] == "refund"


def test_alternative_phrasing_is_searched(index: FaqIndex) -> None:
    assert best(index, "什么时候能发货呀")[0] == "shipping"


def test_synonym_of_product_name_matches(index: FaqIndex) -> None:
    slug, confidence = best(index, "云盒Pro多少钱")
    assert slug == "pro-price" and confidence >= THRESHOLD


def test_unknown_content_lowers_confidence(index: FaqIndex) -> None:
    assert best(index, "你们支持比特币和外汇结算吗")[1] < THRESHOLD


def test_close_paraphrase_is_confident(index: FaqIndex) -> None:
    assert best(index, "会员卡怎么办理呢")[1] >= 0.8


def test_greeting_is_small_talk(index: FaqIndex) -> None:
    assert index.is_small_talk("你好，在吗？")
    assert not index.is_small_talk("发票")


def test_uncovered_words_sharing_characters_with_the_entry_raise_its_confidence(
    index: FaqIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 以后 is no index term, but its 后 is in "下单后多久发货"
    question = "下单以后多久发货"
    with_credit = index.search(question)[0]
    monkeypatch.setattr("autoreply.faq.CHARACTER_CREDIT", 0.0)
    without_credit = index.search(question)[0]
    assert with_credit.entry.slug == without_credit.entry.slug == "shipping"
    assert with_credit.confidence > without_credit.confidence


def test_uncovered_words_foreign_to_the_entry_earn_no_credit(
    index: FaqIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "股票多久发货"
    with_credit = index.search(question)[0]
    monkeypatch.setattr("autoreply.faq.CHARACTER_CREDIT", 0.0)
    assert index.search(question)[0].confidence == with_credit.confidence
