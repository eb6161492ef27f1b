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
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

import jieba

from .automaton import WordAutomaton
from .dictionary import Context, WordsByFirstCharacter
from .normalize import is_word_char, normalize
from .templates import ReplyVariant

# function words: they carry no topic, and they do not count as unknown content
_STOPWORD_TEXT = (
    "的 了 吗 嘛 呢 啊 吧 呀 哦 噢 嗯 哈 么 是 在 有 要 想 会 就 都 也 还 又 和 与 及 或 跟 把 被 给 "
    "我 你 您 他 她 它 我们 你们 他们 咱们 这 那 这个 那个 这里 那里 这边 那边 一个 一下 请 请问 "
    "问 问下 问一下 麻烦 谢谢 你好 您好 hi hello 能 能不能 可以 可不可以 可否 是不是 有没有 "
    "得 地 着 过 个 下 去 来 到 对 吧 啦 呗 哎 喂 那么 这么 怎么样 好的 不"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_CONTENT = re.compile(r"[^\W_]+")  # runs of str.isalnum() characters
K1 = 1.2
B = 0.75
RERANK = 5  # BM25 picks this many entries, confidence orders them
ANSWER_WEIGHT = 0.3  # an answer's words say less about the question than its phrasings
# how much a query term counts as covered when found in the best phrasing, in another
# phrasing of the same entry, or only in the entry's answer
COVER_SAME, COVER_SIBLING, COVER_ANSWER = 1.0, 0.8, 0.8
# words outside the index weigh by their rarity in jieba's general dictionary: common
# words (现在, 一般) say little, rare ones (比特币, 核弹) mean the question is elsewhere
GENERAL_IDF_FLOOR, GENERAL_IDF_SPAN, UNKNOWN_MIN = 6.0, 8.0, 0.1
UNSEEN_GENERAL_IDF = 16.0
COMMON_POSTINGS = 32  # entries a term may appear in and still generate candidates
SHORTLIST = 24  # entries scored in full per query
CHARACTER_CREDIT = 0.5  # see FaqIndex._character_credit
DOC_COVER_BASE = 0.5  # confidence = query cover × (base + (1 - base) × phrasing cover)

log = logging.getLogger(__name__)

Unknown = tuple[tuple[str, float], ...]  # words no index term covers, with their mass
_Found = tuple[int, str, bool, bool, float, Context | None]  # FAQ automaton value, see `_entry`
# (answer weight, ((phrasing, weight), …), best phrasing or -1, its weight, and the
# entry's BM25 total and phrasing-cover factor when this is the only query term in it)
_EntryTerm = tuple[float, tuple[tuple[int, float], ...], int, float, float, float]
# an entry scored by BM25 for a query: (total, phrasing score, entry, present query
# terms, best phrasing, its score; -1 and -1.0 when one term is present)
_Scored = tuple[float, float, int, list[tuple[str, _EntryTerm]], int, float]


@dataclass(frozen=True)
class FaqDoc:
    """An entry as the index sees it (a snapshot of a `FaqEntry` row)."""

    id: int
    slug: str
    question: str
    alternatives: tuple[str, ...]
    reply: ReplyVariant


@dataclass(frozen=True, slots=True)
class FaqMatch:
    entry: FaqDoc
    phrasing: str
    score: float  # BM25
    confidence: float  # 0..1, compared with the threshold
    matched_terms: tuple[str, ...]


class _Tokenizer:
    """One jieba tokenizer per process (its dictionary takes ~1 s to load)."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _instance: ClassVar[tuple[jieba.Tokenizer, WordsByFirstCharacter] | None] = None

    @classmethod
    def get(cls) -> tuple[jieba.Tokenizer, WordsByFirstCharacter]:
        """The tokenizer, and its dictionary's words as the query side reads them."""
        with cls._lock:
            if cls._instance is None:
                tok = jieba.Tokenizer()
                tok.initialize()
                cls._instance = (tok, WordsByFirstCharacter(tok.FREQ))
            return cls._instance


def load_tokenizer() -> None:
    """Load jieba's dictionary now (blocking, ~1 s) rather than at the first index build."""
    _Tokenizer.get()


def _is_content(word: str) -> bool:
    return any(ch.isalnum() for ch in word)


def _terms(tok: jieba.Tokenizer, text: str) -> list[str]:
    return [
        w
        for w in (t.strip() for t in tok.cut_for_search(normalize(text), HMM=True))
        if w and w not in STOPWORDS and _is_content(w)
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
        tok, general = _Tokenizer.get()
        for word in canonical:
            freq = max(tok.suggest_freq(word), 1000)
            tok.add_word(word, freq=freq)
            general.add(word, freq)
        surfaces: dict[str, str] = dict(canonical)

        def counted(text: str) -> Counter[str]:
            counts: Counter[str] = Counter()
            for word in _terms(tok, text):
                # one string object per term: query-time lookups in the index's many
                # dicts then match by identity, without reading the key's characters
                term = sys.intern(canonical.get(word, word))
                surfaces.setdefault(word, term)
                counts[term] += 1
            return counts

        doc_terms: list[Counter[str]] = []
        self._doc_entry: list[int] = []
        self._doc_text: list[str] = []
        answer_terms: list[Counter[str]] = []
        self._entry_terms: list[frozenset[str]] = []
        for e_pos, entry in enumerate(self.entries):
            seen: set[str] = set()
            for phrasing in dict.fromkeys((entry.question, *entry.alternatives)):
                if phrasing.strip():
                    counts = counted(phrasing)
                    doc_terms.append(counts)
                    self._doc_entry.append(e_pos)
                    self._doc_text.append(phrasing)
                    seen.update(counts)
            self._entry_terms.append(frozenset(seen))
            answer_terms.append(counted(entry.reply.text))
        # idf over entries, not phrasings: alternatives repeat their entry's words
        df: Counter[str] = Counter()
        for e_pos, phrased in enumerate(self._entry_terms):
            df.update(phrased | frozenset(answer_terms[e_pos]))
        n = max(len(self.entries), 1)
        self.idf: dict[str, float] = {
            t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()
        }
        self.max_idf = max(self.idf.values(), default=1.0)
        self._doc_weights = self._bm25(doc_terms)
        self._answer_weights = self._bm25(answer_terms)
        self._self_score = [sum(w.values(), 0.0) for w in self._doc_weights]
        self._df = dict(df)
        self._entry_docs: list[list[int]] = [[] for _ in self.entries]
        for doc, e_pos in enumerate(self._doc_entry):
            self._entry_docs[e_pos].append(doc)
        # term → [(entry, bound)], best first: the term's best phrasing weight in the
        # entry plus its answer weight, an upper bound used to shortlist candidates
        bounds: dict[str, dict[int, float]] = {}
        for doc, weights in enumerate(self._doc_weights):
            entry_of_doc = self._doc_entry[doc]
            for term, weight in weights.items():
                per_entry = bounds.setdefault(term, {})
                per_entry[entry_of_doc] = max(per_entry.get(entry_of_doc, 0.0), weight)
        for e_pos, weights in enumerate(self._answer_weights):
            for term, weight in weights.items():
                per_entry = bounds.setdefault(term, {})
                per_entry[e_pos] = per_entry.get(e_pos, 0.0) + ANSWER_WEIGHT * weight
        self._postings: dict[str, list[tuple[int, float]]] = {
            term: sorted(per_entry.items(), key=lambda kv: -kv[1])
            for term, per_entry in bounds.items()
        }
        self._top_postings: dict[str, list[int]] = {
            term: [entry for entry, _bound in postings[:SHORTLIST]]
            for term, postings in self._postings.items()
        }
        self._entry_chars = [
            frozenset(
                ch
                for text in (entry.question, *entry.alternatives, entry.reply.text)
                for ch in normalize(text)
                if ch.isalnum()
            )
            for entry in self.entries
        ]
        self._doc_terms = [frozenset(c) for c in doc_terms]
        # entry → term → (answer weight, ((phrasing, weight), …), best phrasing, its weight):
        # scoring an entry costs one lookup per query term, not one per phrasing and term
        by_entry: list[dict[str, tuple[float, list[tuple[int, float]]]]] = [
            {term: (weight, []) for term, weight in answer.items()}
            for answer in self._answer_weights
        ]
        for doc, weights in enumerate(self._doc_weights):
            index = by_entry[self._doc_entry[doc]]
            for term, weight in weights.items():
                index.setdefault(term, (0.0, []))[1].append((doc, weight))
        self._entry_index: list[dict[str, _EntryTerm]] = [
            {
                term: _entry_term(aw, postings, self._self_score)
                for term, (aw, postings) in index.items()
            }
            for index in by_entry
        ]
        # term → its shortlist as a one-term query reranks it, best BM25 first (total,
        # phrasing score, entry order): (total, entry, best phrasing, whether the term is in
        # a phrasing, phrasing-cover factor). `rank` then reads one flat tuple per entry
        # instead of the entry's term index.
        self._one_term_order: dict[str, list[tuple[float, int, int, bool, float]]] = {}
        for term, shortlist in self._top_postings.items():
            order = [
                (hit[4], hit[3], entry, hit[2], bool(hit[1]), hit[5])
                for entry in shortlist
                for hit in (self._entry_index[entry][term],)
            ]
            order.sort(key=_bm25_order, reverse=True)
            self._one_term_order[term] = [
                (total, entry, best, in_phrasing, factor)
                for total, _phrasing, entry, best, in_phrasing, factor in order
            ]
        self._general = tok.FREQ
        self._general_words = general.by_first
        self._general_total = float(tok.total)
        # dictionary word → its unknown-content weight, filled as words are met: at most
        # one entry per word of jieba's dictionary (and per character outside it)
        self._unknown_word_weight: dict[str, float] = {}
        # stopwords are in the automaton even when the index is empty: they are known
        # content (a greeting), not unknown content
        automaton: WordAutomaton[_Found] = WordAutomaton()
        for word, term in surfaces.items():
            if term in self.idf:
                automaton.add(word, _entry(word, term, self.idf[term], general))
        for word in STOPWORDS:
            if word not in surfaces:
                automaton.add(word, _entry(word, "", 0.0, general))
        automaton.build()
        self._automaton = automaton

    def _bm25(self, docs: Sequence[Counter[str]]) -> list[dict[str, float]]:
        """Each doc's precomputed BM25 weight per term."""
        avgdl = sum(sum(c.values()) for c in docs) / max(len(docs), 1)
        weights: list[dict[str, float]] = []
        for counts in docs:
            dl = sum(counts.values())
            weights.append(
                {
                    term: self.idf[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))
                    for term, tf in counts.items()
                }
            )
        return weights

    def __len__(self) -> int:
        return len(self.entries)

    def _unknown_words(self, span: str, out: list[tuple[str, float]]) -> None:
        """Words of text no index term covers, with their idf mass: forward maximum
        matching on jieba's general dictionary, each word weighted by its general rarity."""
        by_first = self._general_words
        weights = self._unknown_word_weight
        i, n = 0, len(span)
        while i < n:
            # the longest dictionary word (4, 3, 2 characters) here, else one character
            word = span[i]
            words = by_first.get(word)
            if words is not None:
                for size in (4, 3, 2):
                    if i + size <= n and span[i : i + size] in words:
                        word = span[i : i + size]
                        break
            weight = weights.get(word)
            if weight is None:
                f = self._general.get(word, 0)
                general_idf = math.log(self._general_total / f) if f > 0 else UNSEEN_GENERAL_IDF
                rarity = (general_idf - GENERAL_IDF_FLOOR) / GENERAL_IDF_SPAN
                weight = weights[word] = self.max_idf * min(1.0, max(UNKNOWN_MIN, rarity))
            out.append((word, weight))
            i += len(word)

    def _scan(self, norm: str) -> tuple[dict[str, float], int]:
        """The index terms in `norm` (a `normalize`d text) as term → idf, and the mask of
        the characters that index terms and function words cover."""
        found: list[tuple[int, int, str, float, Context | None]] = []
        covered = multi = 0
        size = len(norm)
        values = self._automaton.values
        for index, start, end in self._automaton.occurrences(norm):
            length, term, left, right, idf, context = values[index]
            if (left or right) and (
                (left and start > 0 and is_word_char(norm[start - 1]))
                or (right and end < size and is_word_char(norm[end]))
            ):
                continue  # "pro" inside "product"
            found.append((start, length, term, idf, context))
            mask = ((1 << length) - 1) << start
            covered |= mask
            if length > 1:
                multi |= mask
        terms: dict[str, float] = {}
        for start, length, term, idf, context in found:
            if length == 1:
                # a single character inside a longer word is part of that word, as in
                # jieba's search mode: 会员卡 yields 会员, not 卡; 信用卡 is not 用 + 卡
                if (multi >> start) & 1:
                    continue
                if context is not None and context.holds(norm, start):
                    covered &= ~(1 << start)  # counted as unknown content instead
                    continue
            if term:
                terms[term] = idf
        return terms, covered

    def _unknown(self, norm: str, covered: int) -> Unknown:
        """The words of the content (letters, digits, CJK) outside `covered`."""
        unknown: list[tuple[str, float]] = []
        for content in _CONTENT.finditer(norm):
            start, end = content.span()
            gaps = ~(covered >> start) & ((1 << (end - start)) - 1)  # uncovered characters
            while gaps:
                low = (gaps & -gaps).bit_length() - 1
                run = gaps >> low
                size = (~run & (run + 1)).bit_length() - 1  # uncovered characters in a row
                self._unknown_words(norm[start + low : start + low + size], unknown)
                gaps &= ~(((1 << size) - 1) << low)
        return tuple(unknown)

    def query_terms(self, norm: str) -> tuple[dict[str, float], Unknown]:
        """The index terms in `norm` (a `normalize`d text) as term → idf, and the words
        of the content no term covers with their idf mass."""
        terms, covered = self._scan(norm)
        return terms, self._unknown(norm, covered)

    def answer(self, norm: str, limit: int = 1) -> tuple[list[FaqMatch], bool]:
        """`rank(*query_terms(norm))`, and whether `norm` holds any term or unknown
        content (False: only greetings and function words)."""
        terms, covered = self._scan(norm)
        if terms:
            return self.rank(terms, self._unknown(norm, covered), limit), True
        # nothing to rank: whether some content is uncovered matters, not its words
        return [], _has_uncovered_content(norm, covered)

    def answer_many(self, norms: Sequence[str]) -> list[tuple[list[FaqMatch], bool]]:
        """`answer(norm)` for each text, step by step over all of them (see
        `Engine.decide_many`)."""
        scans = [self._scan(norm) for norm in norms]
        unknown = [
            self._unknown(norm, covered) if terms else ()
            for norm, (terms, covered) in zip(norms, scans, strict=True)
        ]
        return [
            (self.rank(terms, words), True)
            if terms
            else ([], _has_uncovered_content(norm, covered))
            for norm, (terms, covered), words in zip(norms, scans, unknown, strict=True)
        ]

    def is_small_talk(self, text: str) -> bool:
        """True when the text holds no index term and no unknown content."""
        norm = normalize(text)
        terms, covered = self._scan(norm)
        return not terms and not _has_uncovered_content(norm, covered)

    def search(self, text: str, limit: int = 1) -> list[FaqMatch]:
        """Best entries for `text`, most confident first (one per entry)."""
        return self.rank(*self.query_terms(normalize(text)), limit=limit)

    def rank(self, terms: Mapping[str, float], unknown: Unknown, limit: int = 1) -> list[FaqMatch]:
        """Entries for the output of `query_terms`, most confident first."""
        if not terms:
            return []
        # BM25 picks the few worth reranking, confidence orders them
        rerank = max(RERANK, limit * 3)
        # float starts: mypyc (tried for issue 6) types a bare sum() of floats as int
        query_mass = sum(terms.values(), 0.0) + sum([weight for _word, weight in unknown], 0.0)
        credits = self._credit_words(unknown) if unknown else None
        # (-confidence, -BM25 total, BM25 rank, entry, best phrasing, the query terms the
        # entry holds): sorted as is, these order by confidence, then total, then BM25
        # order (a stable sort on the first two); BM25 ranks are distinct, so the rest is
        # never compared
        rescored: list[tuple[float, float, int, int, int, Sequence[tuple[str, object]]]] = []
        if len(terms) == 1:
            # the common case: one query term, in every shortlisted entry (its postings),
            # so their BM25 order and each entry's best phrasing were found at build time
            ((term, weight),) = terms.items()
            same, answer_only = weight * COVER_SAME, weight * COVER_ANSWER
            order = self._one_term_order.get(term, [])
            held = ((term, None),)  # every entry of its shortlist holds it
            for position, (total, entry, best, in_phrasing, factor) in enumerate(order[:rerank]):
                covered = same if in_phrasing else answer_only
                if credits:
                    covered += self._character_credit(credits, entry)
                rescored.append(
                    (-(covered / query_mass * factor), -total, position, entry, best, held)
                )
        else:
            for position, (total, _phrasing, entry, present, best, best_score) in enumerate(
                self._bm25_top(terms, rerank)
            ):
                if best_score < 0.0:  # one query term in this entry: all found at build time
                    hit = present[0][1]
                    best, factor = hit[2], hit[5]
                    covered = terms[present[0][0]] * (COVER_SAME if hit[1] else COVER_ANSWER)
                else:
                    own = self._doc_terms[best] if best >= 0 else frozenset()
                    covered = 0.0
                    for term, hit in present:
                        if term in own:
                            covered += terms[term] * COVER_SAME
                        elif hit[1]:  # in another phrasing
                            covered += terms[term] * COVER_SIBLING
                        else:
                            covered += terms[term] * COVER_ANSWER
                    # how much of the question this entry explains, scaled by how much of
                    # its best phrasing the question says: both must be high to answer
                    doc_cover = best_score / self._self_score[best] if best >= 0 else 0.0
                    factor = DOC_COVER_BASE + (1 - DOC_COVER_BASE) * doc_cover
                if credits:
                    covered += self._character_credit(credits, entry)
                rescored.append(
                    (-(covered / query_mass * factor), -total, position, entry, best, present)
                )
        rescored.sort()
        return [
            # matched terms: the query's terms in the entry's index (all of its terms)
            self._match(-confidence, -total, entry, best, tuple(sorted([t for t, _ in held])))
            for confidence, total, _position, entry, best, held in rescored[:limit]
        ]

    def _bm25_top(self, terms: Mapping[str, float], count: int) -> list[_Scored]:
        """The `count` best shortlisted entries of a several-term query by BM25 (total,
        phrasing score, entry), each with its present terms, and its best phrasing and
        score (best score -1: one present term, read them from its `_EntryTerm`)."""
        entry_index = self._entry_index
        scored: list[_Scored] = []
        for entry in self._shortlist(terms):
            index = entry_index[entry]
            present = [(term, hit) for term in terms if (hit := index.get(term)) is not None]
            if len(present) == 1:
                # its best phrasing and weight were found at build time
                only = present[0][1]
                scored.append((only[4], only[3], entry, present, -1, -1.0))
                continue
            # Scoring in full only the entries whose bound (the sum of each present
            # term's total alone) can reach the top `count` was measured on the bench:
            # it spared 51 of 1,851 entries, less than its own bookkeeping cost.
            doc_scores: dict[int, float] = {}
            answer_score = 0.0
            for _term, hit in present:  # hit[0]: answer weight, hit[1]: postings
                answer_score += hit[0]
                for doc, weight in hit[1]:
                    doc_scores[doc] = doc_scores.get(doc, 0.0) + weight
            best_score, best = 0.0, -1
            for doc, score in doc_scores.items():  # ties: the earlier phrasing
                if score > best_score or (score == best_score and doc < best):
                    best_score, best = score, doc
            scored.append(
                (
                    best_score + ANSWER_WEIGHT * answer_score,
                    best_score,
                    entry,
                    present,
                    best,
                    best_score,
                )
            )
        # entries are distinct: the first three items order the tuples, as a BM25 sort would
        scored.sort(reverse=True)
        return scored[:count]

    @staticmethod
    def _credit_words(unknown: Unknown) -> list[tuple[str, float, int]]:
        """Each uncovered word with its mass × CHARACTER_CREDIT and its length."""
        return [(word, weight * CHARACTER_CREDIT, len(word)) for word, weight in unknown]

    def _character_credit(self, credits: Sequence[tuple[str, float, int]], entry: int) -> float:
        """Part of the uncovered mass the entry explains character by character.

        Word matching misses Chinese words that share characters without sharing a
        segmentation (换 / 换货, 付完款 / 付款后, 收不收费 / 收费): each uncovered word
        counts for CHARACTER_CREDIT of its mass times the share of its characters found
        in the entry's phrasings or answer (`credits` comes from `_credit_words`).
        """
        chars = self._entry_chars[entry]
        credit = 0.0
        for word, mass, size in credits:
            shared = 0
            for ch in word:
                if ch in chars:
                    shared += 1
            if shared:
                credit += mass * shared / size
        return credit

    def _shortlist(self, terms: Iterable[str]) -> list[int]:
        """Entries worth scoring in full: BM25 over the query's rarer terms only.

        Terms in more than COMMON_POSTINGS entries (怎么, 多少) are left out here and
        only count when the shortlist is scored in full, so a query costs about the
        same with 40 entries or 4,000.
        """
        df = self._df
        rare = [t for t in terms if df[t] <= COMMON_POSTINGS]
        if not rare:
            rare = [min(terms, key=df.__getitem__)]
        if len(rare) == 1:  # the common case: postings are stored best first
            return self._top_postings.get(rare[0], [])
        partial: dict[int, float] = {}
        for term in rare:
            for entry, bound in self._postings.get(term, ()):
                partial[entry] = partial.get(entry, 0.0) + bound
        if len(partial) <= SHORTLIST:
            return list(partial)
        # what heapq.nlargest does (ties: the entry met first), without its Python loop
        return sorted(partial, key=partial.__getitem__, reverse=True)[:SHORTLIST]

    def _match(
        self, confidence: float, total: float, entry: int, doc: int, matched: tuple[str, ...]
    ) -> FaqMatch:
        match: FaqMatch = _new_match(FaqMatch)
        _set_entry(match, self.entries[entry])
        _set_phrasing(match, self._doc_text[doc] if doc >= 0 else self.entries[entry].question)
        _set_score(match, round(total, 4))
        _set_confidence(match, round(confidence, 4))
        _set_matched_terms(match, matched)
        return match


# A frozen dataclass's __init__ sets each field through object.__setattr__, looked up
# per field; the slot descriptors set the same fields directly (one match is built per
# message that reaches the FAQ).
_new_match = object.__new__
_set_entry, _set_phrasing, _set_score, _set_confidence, _set_matched_terms = (
    FaqMatch.__dict__[f.name].__set__ for f in fields(FaqMatch)
)


def _entry_term(
    answer_weight: float, postings: list[tuple[int, float]], self_score: Sequence[float]
) -> _EntryTerm:
    best, best_weight = -1, 0.0
    for doc, weight in postings:  # in phrasing order: ties keep the earlier phrasing
        if weight > best_weight:
            best, best_weight = doc, weight
    # how much of the question this entry explains, scaled by how much of its best
    # phrasing the question says: both must be high to answer
    doc_cover = best_weight / self_score[best] if best >= 0 else 0.0
    return (
        answer_weight,
        tuple(postings),
        best,
        best_weight,
        best_weight + ANSWER_WEIGHT * answer_weight,
        DOC_COVER_BASE + (1 - DOC_COVER_BASE) * doc_cover,
    )


def _has_uncovered_content(norm: str, covered: int) -> bool:
    """Whether a letter, digit or CJK character of `norm` is outside `covered`."""
    for content in _CONTENT.finditer(norm):
        start, end = content.span()
        if ~(covered >> start) & ((1 << (end - start)) - 1):
            return True
    return False


def _by_confidence(item: tuple[float, float, int, int]) -> tuple[float, float]:
    """Sort key of reranked entries: confidence, then BM25 total, highest first."""
    return (-item[0], -item[1])


def _entry(word: str, term: str, idf: float, general: WordsByFirstCharacter) -> _Found:
    """Automaton value: length, term ("" = stopword), word-boundary checks needed, the
    term's idf (carried here: no idf look-up per term found), and for one character the
    dictionary words it may be part of (None: none)."""
    context = None
    if len(word) == 1:
        context = general.context(word)
        if not any(context):
            context = None
    return (len(word), term, is_word_char(word[0]), is_word_char(word[-1]), idf, context)


def _bm25_order(item: tuple[float, float, int, object, object, object]) -> tuple[float, float, int]:
    """Sort key of BM25-scored entries: total, phrasing score, entry (all distinct)."""
    return (item[0], item[1], item[2])
