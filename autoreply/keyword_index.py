"""All keyword rules compiled into one Aho–Corasick automaton (ahocorasick_rs), so a
message is scanned once whatever the number of rules; exact rules are one dict lookup.

An index is immutable: a rebuild makes a new one beside the old and the cache swaps the
reference (see cache.py), so matching never waits for a rebuild.
"""

from __future__ import annotations

import heapq
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .automaton import Occurrence, WordAutomaton
from .normalize import exact_form, is_word_char, trim_edges
from .rules import MatchKind, Rule

# automaton value: (boundary checks left/right, the word, the positions of
# the rules it alone satisfies (any-of and single-keyword rules), of the all-of rules
# using it), best first; plain ints: a rebuild allocates few objects for the GC to track
_WordValue = tuple[bool, bool, str, tuple[int, ...], tuple[int, ...]]
F = TypeVar("F")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A rule whose text condition holds, with the keywords that made it hold."""

    rule: Rule
    matched: tuple[str, ...]


class KeywordIndex:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: r.order))
        self.uses_tags = any(r.tag_ids for r in self.rules)
        self._exact: dict[str, list[tuple[int, str]]] = {}
        self._regex: list[int] = []
        by_word: dict[str, tuple[list[int], list[int]]] = {}
        for pos, rule in enumerate(self.rules):
            if rule.match is MatchKind.EXACT:
                for word in rule.keywords:
                    self._exact.setdefault(exact_form(word), []).append((pos, word))
            elif rule.match is MatchKind.REGEX:
                self._regex.append(pos)
            else:
                for word in rule.keywords:
                    alone, together = by_word.setdefault(word, ([], []))
                    if rule.match is MatchKind.ALL and len(rule.keywords) > 1:
                        together.append(pos)
                    else:
                        alone.append(pos)
        self._regex_gate = _regex_gate([self.rules[pos] for pos in self._regex])
        self._automaton: WordAutomaton[_WordValue] = WordAutomaton()
        for word, (alone, together) in by_word.items():
            # ASCII words match on word boundaries only: "agent" is not in "management"
            left, right = is_word_char(word[0]), is_word_char(word[-1])
            self._automaton.add(word, (left, right, word, tuple(alone), tuple(together)))
        self._automaton.build()
        values = self._automaton.values
        self._words = tuple(value[2] for value in values)
        self._settled = array("l", (self._settling_rule(value) for value in values))

    def _settling_rule(self, value: _WordValue) -> int:
        """The position of the rule that a word's occurrence makes the best so far with
        no check at all (its first any-of rule, no scope, no rule ranked before it that
        needs one, no boundary to check), or -1."""
        left, right, _word, alone, together = value
        if left or right or not alone or not self.rules[alone[0]].everywhere:
            return -1
        if together and together[0] < alone[0]:
            return -1
        return alone[0]

    def __len__(self) -> int:
        return len(self.rules)

    def first(
        self,
        norm: str,
        refusal: Callable[[Rule, F], str | None],
        facts: F,
    ) -> tuple[Rule, tuple[str, ...]] | None:
        """The first of `candidates(norm)` that `refusal(rule, facts)` lets answer (a
        rule with no scope is never asked), with its matched keywords.

        The common message has no exact or regex match: each keyword's rules are then
        already in order, and the first rule in scope is the best first-in-scope rule of
        any keyword (or all-of rule completed), without the bookkeeping of `candidates`.
        """
        found = self._automaton.occurrences(norm)
        if (self._regex and not self._regex_gate_refuses(norm)) or trim_edges(norm) in self._exact:
            return self._first_candidate(norm, found, refusal, facts)
        rules = self.rules
        best_pos = len(rules)
        best_words: list[str] | None = None  # an all-of rule's keywords, once complete
        indexes: list[int] = []  # of the words found, for the matched keywords
        partial: dict[int, set[str]] | None = None
        values = self._automaton.values
        settled = self._settled
        for index, start, end in found:
            # most words: a flat array says which rule they settle, without reading
            # the word's value or a Rule (cold memory: half the cost of a message)
            pos = settled[index]
            if pos >= 0:
                indexes.append(index)
                if pos < best_pos:
                    best_pos, best_words = pos, None
                continue
            left, right, word, alone, together = values[index]
            if (left or right) and not _on_boundaries(norm, start, end, left, right):
                continue
            indexes.append(index)
            for pos in alone:
                if pos >= best_pos:
                    break
                rule = rules[pos]
                if rule.everywhere or refusal(rule, facts) is None:
                    best_pos, best_words = pos, None
                    break
            for pos in together:
                if pos >= best_pos:
                    break  # ranked after a rule already found: it cannot answer
                if partial is None:
                    partial = {}
                have = partial.setdefault(pos, set())
                have.add(word)
                rule = rules[pos]
                if len(have) == len(rule.keywords) and (
                    rule.everywhere or refusal(rule, facts) is None
                ):
                    best_pos, best_words = pos, sorted(have)
                    break
        if best_pos == len(rules):
            return None
        best = rules[best_pos]
        if best_words is not None:
            return best, tuple(best_words)
        keywords = best.keywords
        if len(keywords) == 1:
            return best, keywords
        # the rule's keywords among the message's, in the order they occur
        matched: list[str] = []
        words = self._words
        for index in indexes:
            word = words[index]
            if word in keywords and word not in matched:
                matched.append(word)
        return best, tuple(matched)

    def _first_candidate(
        self,
        norm: str,
        found: list[Occurrence],
        refusal: Callable[[Rule, F], str | None],
        facts: F,
    ) -> tuple[Rule, tuple[str, ...]] | None:
        for cand in self._candidates(norm, found):
            if cand.rule.everywhere or refusal(cand.rule, facts) is None:
                return cand.rule, cand.matched
        return None

    def candidates(self, norm: str) -> Iterator[Candidate]:
        """Rules whose text condition holds for `norm` (a `normalize`d message), best
        priority first.

        Lazy: a caller that stops at the first rule in scope never evaluates the regex
        rules ranked after it (regexes are the only per-rule cost).
        """
        return self._candidates(norm, self._automaton.occurrences(norm))

    def _regex_gate_refuses(self, norm: str) -> bool:
        """True when no regex rule can match `norm` (one C-level search for them all)."""
        return self._regex_gate is not None and self._regex_gate.search(norm) is None

    def _candidates(self, norm: str, occurrences: list[Occurrence]) -> Iterator[Candidate]:
        found: dict[int, list[str]] = {}
        for pos, word in self._exact.get(trim_edges(norm), ()):
            found[pos] = [word]
        partial: dict[int, set[str]] = {}
        values = self._automaton.values
        for index, start, end in occurrences:
            left, right, word, alone, together = values[index]
            if (left or right) and not _on_boundaries(norm, start, end, left, right):
                continue
            for pos in alone:
                hit = found.get(pos)
                if hit is None:
                    found[pos] = [word]
                elif word not in hit:
                    hit.append(word)
            for pos in together:
                words = partial.setdefault(pos, set())
                words.add(word)
                if len(words) == len(self.rules[pos].keywords):
                    found[pos] = sorted(words)
        if not self._regex or self._regex_gate_refuses(norm):
            for pos in sorted(found):
                yield Candidate(self.rules[pos], tuple(found[pos]))
            return
        for pos in heapq.merge(sorted(found), self._regex):
            hit = found.get(pos)
            if hit is not None:
                yield Candidate(self.rules[pos], tuple(hit))
                continue
            rule = self.rules[pos]
            m = rule.compiled.search(norm) if rule.compiled is not None else None
            if m is not None:
                yield Candidate(rule, (m.group(0),))


_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")


def _regex_gate(rules: Sequence[Rule]) -> re.Pattern[str] | None:
    """One alternation of every regex rule: it matches iff at least one rule does.

    None when the patterns cannot be joined (a backreference would point at another
    rule's group, a group name repeats, an inline global flag) or there is only one.
    """
    patterns = [r.pattern for r in rules if r.pattern]
    if len(patterns) < 2 or any(_BACKREFERENCE.search(p) for p in patterns):
        return None
    try:
        # same flags as each rule's own compile (rules.rule_from_fields)
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    except re.error:
        return None


def _on_boundaries(norm: str, start: int, end: int, left: bool, right: bool) -> bool:
    """Whether norm[start:end] has no ASCII letter or digit on a side that needs it."""
    if left and start > 0 and is_word_char(norm[start - 1]):
        return False
    return not (right and end < len(norm) and is_word_char(norm[end]))
