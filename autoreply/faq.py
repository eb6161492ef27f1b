"""FAQ knowledge base (知识库) search: jieba at index time, BM25 ranking, a confidence
in [0, 1] that decides between answering and handing off.

Index time: every phrasing (the question and its alternatives) is cut with jieba's
search mode, with the product-name dictionary (`FaqTerm`) added and synonyms folded
onto one canonical term. Query time must cost microseconds, and jieba costs ~50 µs a
message, so the query is segmented by one Aho–Corasick pass over the index's own
vocabulary instead: a term the index has never seen cannot score anyway, and the
characters no term covers are counted as unknown content that lowers the confidence.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import ahocorasick
import jieba

from .normalize import is_word_char, normalize
from .templates import ReplyVariant

# function words: they carry no topic, and they do not count as unknown content
_STOPWORD_TEXT = (
    "的 了 吗 嘛 呢 啊 吧 呀 哦 噢 嗯 哈 么 是 在 有 要 想 会 就 都 也 还 又 和 与 及 或 跟 把 被 给 "
    "我 你 您 他 她 它 我们 你们 他们 咱们 这 那 这个 那个 这里 那里 这边 那边 一个 一下 请 请问 "
    "问 问下 问一下 麻烦 谢谢 你好 您好 hi hello 能 能不能 可以 可不可以 可否 是不是 有没有 "
    "得 地 着 过 个 下 去 来 到 对 吧 啦 呗 哎 喂 那么 这么 怎么样 好的"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
K1 = 1.2
B = 0.75
UNKNOWN_CHARS_PER_TERM = 2  # an unseen Chinese word is about two characters
RERANK = 5  # BM25 picks this many phrasings, confidence orders them

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaqDoc:
    """An entry as the index sees it (a snapshot of a `FaqEntry` row)."""

    id: int
    slug: str
    question: str
    alternatives: tuple[str, ...]
    reply: ReplyVariant


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqDoc
    phrasing: str
    score: float  # BM25
    confidence: float  # 0..1, compared with the threshold
    matched_terms: tuple[str, ...]


class _Tokenizer:
    """One jieba tokenizer per process (its dictionary takes ~1 s to load)."""

    _lock = threading.Lock()
    _instance: jieba.Tokenizer | None = None

    @classmethod
    def get(cls) -> jieba.Tokenizer:
        with cls._lock:
            if cls._instance is None:
                tok = jieba.Tokenizer()
                tok.initialize()
                cls._instance = tok
            return cls._instance


def _terms(tok: jieba.Tokenizer, text: str) -> list[str]:
    return [
        w
        for w in (t.strip() for t in tok.cut_for_search(normalize(text), HMM=True))
        if w and w not in STOPWORDS and any(ch.isalnum() for ch in w)
    ]


class FaqIndex:
    def __init__(
        self,
        entries: Iterable[FaqDoc],
        synonyms: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Build the index; `synonyms` maps a canonical term to the words that mean it."""
        self.entries: tuple[FaqDoc, ...] = tuple(entries)
        canonical: dict[str, str] = {}
        for term, words in (synonyms or {}).items():
            for word in (term, *words):
                if normalize(word).strip():
                    canonical[normalize(word).strip()] = normalize(term).strip()
        tok = _Tokenizer.get() if self.entries else None
        if tok is not None:
            for word in canonical:
                tok.add_word(word, freq=max(tok.suggest_freq(word), 1000))
        doc_terms: list[Counter[str]] = []
        self._doc_entry: list[int] = []
        self._doc_text: list[str] = []
        surfaces: dict[str, str] = {w: c for w, c in canonical.items()}
        entry_terms: list[set[str]] = []
        for e_pos, entry in enumerate(self.entries):
            seen: set[str] = set()
            for phrasing in dict.fromkeys((entry.question, *entry.alternatives)):
                if not phrasing.strip() or tok is None:
                    continue
                counts: Counter[str] = Counter()
                for word in _terms(tok, phrasing):
                    term = canonical.get(word, word)
                    surfaces.setdefault(word, term)
                    counts[term] += 1
                doc_terms.append(counts)
                self._doc_entry.append(e_pos)
                self._doc_text.append(phrasing)
                seen.update(counts)
            entry_terms.append(seen)
        # idf over entries, not phrasings: alternatives repeat their entry's words
        df: Counter[str] = Counter()
        for seen in entry_terms:
            df.update(seen)
        n = max(len(entry_terms), 1)
        self.idf: dict[str, float] = {
            t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()
        }
        self.max_idf = max(self.idf.values(), default=1.0)
        avgdl = sum(sum(c.values()) for c in doc_terms) / max(len(doc_terms), 1)
        self._postings: dict[str, list[tuple[int, float]]] = {}
        self._self_score: list[float] = []
        self._doc_idf: list[float] = []
        for doc, counts in enumerate(doc_terms):
            dl = sum(counts.values())
            total = 0.0
            for term, tf in counts.items():
                weight = self.idf[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))
                self._postings.setdefault(term, []).append((doc, weight))
                total += weight
            self._self_score.append(total)
            self._doc_idf.append(sum(self.idf[t] for t in counts))
        self._doc_terms = [frozenset(c) for c in doc_terms]
        # stopwords are in the automaton even when the index is empty: they are known
        # content (a greeting), not unknown content
        automaton = ahocorasick.Automaton()
        for word, term in surfaces.items():
            if term in self.idf:
                automaton.add_word(word, (len(word), term))
        for word in STOPWORDS:
            if word not in surfaces:
                automaton.add_word(word, (len(word), ""))
        automaton.make_automaton()
        self._automaton = automaton

    def __len__(self) -> int:
        return len(self.entries)

    def query_terms(self, text: str) -> tuple[dict[str, float], float]:
        """The index terms found in `text` (term → idf) and the idf mass of unknown content."""
        norm = normalize(text)
        found: list[tuple[int, int, str]] = []
        covered = 0
        for end, (length, term) in self._automaton.iter(norm):
            start = end - length + 1
            if (is_word_char(norm[start]) and start > 0 and is_word_char(norm[start - 1])) or (
                is_word_char(norm[end]) and end + 1 < len(norm) and is_word_char(norm[end + 1])
            ):
                continue  # "pro" inside "product"
            found.append((start, length, term))
            covered |= ((1 << length) - 1) << start
        terms: dict[str, float] = {}
        for start, length, term in found:
            # a single character inside a longer match is part of that word, as in
            # jieba's search mode (会员卡 yields 会员, not 卡)
            if length == 1 and any(ln > 1 and s <= start < s + ln for s, ln, _ in found):
                continue
            if term:
                terms[term] = self.idf[term]
        unknown = 0
        for i, ch in enumerate(norm):
            if ch.isalnum() and not (covered >> i) & 1:
                unknown += 1
        return terms, unknown / UNKNOWN_CHARS_PER_TERM * self.max_idf

    def is_small_talk(self, text: str) -> bool:
        """True when the text holds no index term and no unknown content."""
        terms, unknown = self.query_terms(text)
        return not terms and unknown == 0.0

    def search(self, text: str, limit: int = 1) -> list[FaqMatch]:
        """Best entries for `text`, most confident first (one per entry)."""
        terms, unknown_mass = self.query_terms(text)
        if not terms:
            return []
        scores: dict[int, float] = {}
        for term in terms:
            for doc, weight in self._postings.get(term, ()):
                scores[doc] = scores.get(doc, 0.0) + weight
        top = sorted(scores.items(), key=lambda kv: -kv[1])[: max(RERANK, limit * 3)]
        query_mass = sum(terms.values()) + unknown_mass
        ranked: list[FaqMatch] = []
        for doc, score in top:
            shared = terms.keys() & self._doc_terms[doc]
            shared_idf = sum(terms[t] for t in shared)
            # how much of the question is about this phrasing, and how much of the
            # phrasing the question covers: both must be high to answer
            query_cover = shared_idf / query_mass if query_mass else 0.0
            doc_cover = score / self._self_score[doc] if self._self_score[doc] else 0.0
            confidence = math.sqrt(query_cover * doc_cover)
            ranked.append(
                FaqMatch(
                    entry=self.entries[self._doc_entry[doc]],
                    phrasing=self._doc_text[doc],
                    score=round(score, 4),
                    confidence=round(confidence, 4),
                    matched_terms=tuple(sorted(shared)),
                )
            )
        ranked.sort(key=lambda m: (-m.confidence, -m.score))
        best: list[FaqMatch] = []
        seen: set[int] = set()
        for match in ranked:
            if match.entry.id not in seen:
                seen.add(match.entry.id)
                best.append(match)
        return best[:limit]
