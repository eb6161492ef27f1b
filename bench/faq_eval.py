"""FAQ quality on a labelled set: `python -m bench.faq_eval [eval.csv] [--sweep]`.

The evaluation CSV has (question, expected) where expected is an FAQ slug or "handoff".
Every question goes through the same decision stage as the pipeline (built-in hand-off
keywords included, no reply rules), so a "handoff" prediction is what a customer would
see. Prints JSON: top-1 accuracy, hand-off precision/recall, wrong answers, and the
retrieval accuracy before the threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autoreply.engine import Engine, Facts, Outcome
from autoreply.faq import FaqDoc, FaqIndex
from autoreply.faq_transfer import parse_csv
from autoreply.settings import AutoReplySettings
from autoreply.templates import ReplyVariant

DATA = Path(__file__).resolve().parent / "data"
HANDOFF = "handoff"


def load_seed(seed: Path, terms: Path) -> FaqIndex:
    """The FAQ seed and its product-name dictionary as an index."""
    rows = parse_csv(seed.read_bytes())
    docs = [
        FaqDoc(i, r.slug, r.question, r.alternatives, ReplyVariant(r.answer))
        for i, r in enumerate(rows, start=1)
    ]
    with terms.open(encoding="utf-8-sig") as fh:
        synonyms = {row["term"]: row["synonyms"].split("|") for row in csv.DictReader(fh)}
    return FaqIndex(docs, synonyms)


def load_eval(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8-sig") as fh:
        return [(row["question"], row["expected"].strip()) for row in csv.DictReader(fh)]


def evaluate(engine: Engine, cases: list[tuple[str, str]]) -> dict[str, Any]:
    facts = Facts("wecom.kf", 1, datetime(2026, 11, 23, 2, tzinfo=UTC))
    correct = retrieval_ok = answerable = wrong = 0
    handoff_predicted = handoff_right = handoff_expected = 0
    misses: list[dict[str, str]] = []
    for question, expected in cases:
        decision = engine.decide(question, facts)
        predicted = (
            decision.faq.entry.slug
            if decision.outcome is Outcome.FAQ and decision.faq is not None
            else HANDOFF
        )
        if expected != HANDOFF:
            answerable += 1
            top = engine.faq.search(question)
            retrieval_ok += bool(top) and top[0].entry.slug == expected
        else:
            handoff_expected += 1
        if predicted == HANDOFF:
            handoff_predicted += 1
            handoff_right += expected == HANDOFF
        elif predicted != expected:
            wrong += 1
        if predicted == expected:
            correct += 1
        else:
            misses.append({"question": question, "expected": expected, "got": predicted})
    n = len(cases)
    return {
        "threshold": engine.settings.faq_threshold,
        "questions": n,
        "top1_accuracy": round(correct / n, 3) if n else None,
        "handoff_precision": round(handoff_right / handoff_predicted, 3)
        if handoff_predicted
        else None,
        "handoff_recall": round(handoff_right / handoff_expected, 3) if handoff_expected else None,
        "wrong_answer_rate": round(wrong / n, 3) if n else None,
        "retrieval_top1_on_answerable": round(retrieval_ok / answerable, 3) if answerable else None,
        "misses": misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("eval_csv", nargs="?", type=Path, default=DATA / "faq_eval.csv")
    parser.add_argument("--seed", type=Path, default=DATA / "faq_seed.csv")
    parser.add_argument("--terms", type=Path, default=DATA / "faq_terms.csv")
    parser.add_argument("--threshold", type=float, default=AutoReplySettings().faq_threshold)
    parser.add_argument("--sweep", action="store_true", help="report several thresholds")
    parser.add_argument("--misses", action="store_true", help="list the questions it got wrong")
    args = parser.parse_args()
    logging.getLogger("jieba").setLevel(logging.WARNING)
    index = load_seed(args.seed, args.terms)
    cases = load_eval(args.eval_csv)
    thresholds = [0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7] if args.sweep else [args.threshold]
    results = []
    for threshold in thresholds:
        settings = replace(AutoReplySettings(), faq_threshold=threshold)
        result = evaluate(Engine.build([], index, settings), cases)
        if not args.misses:
            result.pop("misses")
        results.append(result)
    print(json.dumps(results if args.sweep else results[0], ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
