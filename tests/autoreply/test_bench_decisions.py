"""Speed work on the decision stage must not change a single decision.

The golden file holds, for every message of the benchmark (`bench/autoreply.py`: 10,000
rules, 2,000 FAQ entries, 1,000 messages) and of the FAQ evaluation set (`bench/faq_eval.py`),
the decision with 10,000 and with 1,000 rules and the FAQ's top three, as the engine gave
them before the decision stage was optimised (issue #6). Regenerate it only for a change
that is meant to alter decisions:

    python -m tests.autoreply.test_bench_decisions
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from autoreply.engine import Decision, Engine, Facts
from autoreply.faq import FaqIndex, FaqMatch, _Tokenizer
from autoreply.settings import AutoReplySettings
from bench.autoreply import SEED, compile_rules, dictionary_words, faq_entries, messages, rule_specs
from bench.faq_eval import DATA, load_eval, load_seed

GOLDEN = Path(__file__).parent / "fixtures" / "bench_decisions.jsonl"
# the benchmark's facts: a WeCom customer-service message at 10:00 in Shanghai, tag 3
FACTS = Facts("wecom.kf", 1, datetime(2026, 11, 23, 2, tzinfo=UTC), frozenset({3}))
BATCHED = "10k_decide_many"  # must equal "10k": checked, not stored


def _stored(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != BATCHED}


def _faq(match: FaqMatch | None) -> list[Any] | None:
    if match is None:
        return None
    return [match.entry.id, match.confidence, match.score, match.phrasing]


def _decision(decision: Decision) -> dict[str, Any]:
    return {
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "rule": decision.rule.id if decision.rule is not None else None,
        "matched": list(decision.matched),
        "faq": _faq(decision.faq),
    }


def _observed() -> Iterator[dict[str, Any]]:
    """One record per message: its decisions and FAQ top three, in benchmark order."""
    rng = random.Random(SEED)
    words = dictionary_words(rng, 30_000)
    specs = rule_specs(words[:20_000], rng, 10_000)
    rule_words = [w for spec in specs for w in spec.get("keywords", [])]
    rules = compile_rules(specs)
    faq = FaqIndex(faq_entries(words[20_000:], rng, 2_000), {"安途Pro": ["pro", "专业版"]})
    settings = AutoReplySettings()
    engine_10k = Engine.build(rules, faq, settings)
    engine_1k = Engine.build(rules[:1_000], faq, settings)
    texts = messages(words[:20_000], rule_words, rng)
    # as the pipeline decides: batches of 100 (not part of the golden file, see BATCHED)
    batched = [
        decision
        for start in range(0, len(texts), 100)
        for decision in engine_10k.decide_many(texts[start : start + 100], [FACTS] * 100)
    ]
    for text, in_batch in zip(texts, batched, strict=True):
        yield {
            "set": "bench",
            "text": text,
            "10k": _decision(engine_10k.decide(text, FACTS)),
            BATCHED: _decision(in_batch),
            "1k": _decision(engine_1k.decide(text, FACTS)),
            "explain_1k": [
                _faq(m) for m in engine_1k.decide(text, FACTS, explain=True).faq_candidates
            ],
            "top3": [_faq(m) for m in faq.search(text, limit=3)],
        }
    seed = load_seed(DATA / "faq_seed.csv", DATA / "faq_terms.csv")
    engine_seed = Engine.build([], seed, settings)
    for text, _expected in load_eval(DATA / "faq_eval.csv"):
        yield {
            "set": "eval",
            "text": text,
            "seed": _decision(engine_seed.decide(text, FACTS)),
            "top3": [_faq(m) for m in seed.search(text, limit=3)],
        }


@pytest.fixture(scope="module")
def observed() -> Iterator[list[dict[str, Any]]]:
    logging.getLogger("jieba").setLevel(logging.WARNING)
    # the golden file was written by a fresh process: words other tests' indexes added to
    # the shared jieba tokenizer must not change how these phrasings are cut
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Tokenizer, "_instance", None)
        yield list(_observed())


@pytest.fixture(scope="module")
def golden() -> list[dict[str, Any]]:
    with GOLDEN.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_benchmark_messages_are_the_golden_ones(
    observed: list[dict[str, Any]], golden: list[dict[str, Any]]
) -> None:
    assert [(r["set"], r["text"]) for r in observed] == [(r["set"], r["text"]) for r in golden]


def test_decisions_equal_the_golden_file(
    observed: list[dict[str, Any]], golden: list[dict[str, Any]]
) -> None:
    changed = [
        (old, new) for old, new in zip(golden, map(_stored, observed), strict=True) if old != new
    ]
    assert not changed, f"{len(changed)} decisions changed, first: {changed[0]}"


def test_deciding_in_batches_gives_the_same_decisions(observed: list[dict[str, Any]]) -> None:
    bench = [r for r in observed if r["set"] == "bench"]
    assert bench and all(r[BATCHED] == r["10k"] for r in bench)


if __name__ == "__main__":
    logging.getLogger("jieba").setLevel(logging.WARNING)
    GOLDEN.parent.mkdir(exist_ok=True)
    with GOLDEN.open("w", encoding="utf-8") as out:
        for record in _observed():
            out.write(json.dumps(_stored(record), ensure_ascii=False) + "\n")
