"""Score the offline NLU on held-out utterances it was never trained on.

Trains from ``intents/`` exactly as the bot does at start-up, runs every
utterance of ``bench/data/heldout.yaml`` through rules + classifier, and
prints accuracy, out-of-scope (``fallback``) recall, the errors per intent
and the time per message. Refuses to score when a held-out text also
appears in the training examples (after normalisation).

``--cv`` instead cross-validates on the *training* examples only (5 folds)
to compare models and pick the threshold; the held-out set is never used
for tuning.

``--language es`` scores another language the business answers in: its
examples (``intents/es/intents.yaml``), its business words and its held-out
set (``bench/data/heldout.es.yaml``), read as the bot reads that language
(accents optional).

Usage::

    .venv/bin/python -m bench.classifier [--json out.json]
    .venv/bin/python -m bench.classifier --language es
    .venv/bin/python bench/classifier.py --cv
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from bot.business import load_business
from bot.clock import FrozenClock
from bot.languages.business import localized_business
from bot.languages.nlu import language_nlu
from bot.languages.profile import DEFAULT_LANGUAGE
from bot.nlu.classifier import IntentClassifier
from bot.nlu.intents import FALLBACK, IntentCatalog, load_intents
from bot.nlu.text import prepare
from bot.nlu.understand import NLU, business_words

ROOT = Path(__file__).resolve().parents[1]
# A fixed "now" (a Monday morning in New York) keeps slot output reproducible.
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("America/New_York"))


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def load_heldout(path: Path, catalog: IntentCatalog) -> list[Example]:
    """Read and check the held-out file: known intents, no training overlap."""
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(items, list):
        raise SystemExit(f"{path}: expected a list of {{text, intent}}")
    known = set(catalog.names)
    trained = {prepare(text): d.name for d in catalog for text in d.examples}
    examples, problems = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"text", "intent"}:
            problems.append(f"item {index}: needs exactly the keys text and intent")
            continue
        text, intent = str(item["text"]), str(item["intent"])
        if intent not in known:
            problems.append(f"item {index} ({text!r}): unknown intent {intent!r}")
        if prepare(text) in trained:
            problems.append(f"item {index} ({text!r}): also a training example of {trained[prepare(text)]!r}")
        examples.append(Example(text, intent))
    if problems:
        raise SystemExit(f"{path}:\n  " + "\n  ".join(problems))
    return examples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_per_message(nlu: NLU, texts: list[str], repeat: int) -> dict[str, float]:
    """Median and p99 wall time of rules + classifier, and of the full classify."""
    for text in texts:  # warm caches (dateparser, numpy) before measuring
        nlu.classify(text, now=NOW)
    predict, full, cached = [], [], []
    for _ in range(repeat):
        for text in texts:
            # Timed at first sight: the classifier caches verdicts by text.
            nlu.classifier.cache_clear()
            start = time.perf_counter()
            prepared = prepare(text)
            if nlu.rules.match_prepared(prepared) is None:
                nlu.classifier.predict_prepared(prepared)
            predict.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            prepared = prepare(text)
            if nlu.rules.match_prepared(prepared) is None:
                nlu.classifier.predict_prepared(prepared)
            cached.append((time.perf_counter() - start) * 1000)
            nlu.classifier.cache_clear()
            start = time.perf_counter()
            nlu.classify(text, now=NOW)
            full.append((time.perf_counter() - start) * 1000)
    return {
        "predict_median_ms": statistics.median(predict),
        "predict_p99_ms": percentile(predict, 0.99),
        "predict_cached_median_ms": statistics.median(cached),
        "classify_median_ms": statistics.median(full),
        "classify_p99_ms": percentile(full, 0.99),
    }


def score(nlu: NLU, examples: list[Example]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for example in examples:
        result = nlu.classify(example.text, now=NOW)
        rows.append(
            {
                "text": example.text,
                "expected": example.intent,
                "predicted": result.intent,
                "confidence": round(result.confidence, 4),
                "source": result.source,
                "best": result.best,
            }
        )
    correct = sum(r["expected"] == r["predicted"] for r in rows)
    oos = [r for r in rows if r["expected"] == FALLBACK]
    oos_hit = sum(r["predicted"] == FALLBACK for r in oos)
    flagged = [r for r in rows if r["predicted"] == FALLBACK]
    classifier_rows = [r for r in rows if r["source"] == "classifier"]
    per_intent: dict[str, dict[str, Any]] = {}
    confusions: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        stats = per_intent.setdefault(r["expected"], {"n": 0, "correct": 0})
        stats["n"] += 1
        stats["correct"] += r["expected"] == r["predicted"]
        if r["expected"] != r["predicted"]:
            confusions[r["expected"]][r["predicted"]] += 1
    return {
        "n": len(rows),
        "accuracy": correct / len(rows),
        "oos_n": len(oos),
        "oos_recall": oos_hit / len(oos) if oos else None,
        "oos_precision": sum(r["expected"] == FALLBACK for r in flagged) / len(flagged) if flagged else None,
        "rule_share": 1 - len(classifier_rows) / len(rows),
        "classifier_accuracy": (
            sum(r["expected"] == r["predicted"] for r in classifier_rows) / len(classifier_rows)
            if classifier_rows
            else None
        ),
        "per_intent": per_intent,
        "confusions": {gold: dict(c) for gold, c in confusions.items()},
        "errors": [r for r in rows if r["expected"] != r["predicted"]],
    }


def cross_validate(catalog: IntentCatalog, extra_words: list[str], folds: int = 5) -> list[dict[str, Any]]:
    """Sweep the threshold and unknown-words settings on the training examples only.

    Each example is predicted by a classifier trained without its fold
    (stratified, 5 folds, two shuffles); rules are left out, so this measures
    the classifier alone and is harsher than the held-out score.
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    pairs = [(text, d.name) for d in catalog for text in d.examples]
    texts = np.array([t for t, _ in pairs], dtype=object)
    labels = np.array([label for _, label in pairs])
    seen: list[tuple[str, str, float, int]] = []
    for seed in (0, 1):
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, labels):
            keep = {(str(texts[i]), str(labels[i])) for i in train}
            subset = replace(
                catalog,
                intents=tuple(
                    replace(d, examples=tuple(t for t in d.examples if (t, d.name) in keep)) for d in catalog
                ),
            )
            clf = IntentClassifier.train(subset, extra_words=extra_words)
            assert clf.vocabulary is not None
            for i in test:
                prepared = prepare(str(texts[i]))
                probs = clf.probabilities(prepared)
                best = clf.labels[int(probs.argmax())]
                unknown = len(clf.vocabulary.unknown_words(prepared))
                seen.append((str(labels[i]), best, float(probs.max()), unknown))
    results = []
    for threshold in [0.25, 0.3, 0.35, 0.4, 0.45, 0.5]:
        for words, max_conf in [(0, 0.0), (1, 0.6), (2, 0.6), (2, 0.7), (2, 0.8), (2, 0.9), (3, 0.8)]:
            predicted = []
            for _, best, conf, unknown in seen:
                intent = best if conf >= threshold else FALLBACK
                if words and unknown >= words and conf < max_conf:
                    intent = FALLBACK
                predicted.append(intent)
            gold = [g for g, *_ in seen]
            oos = [p for g, p in zip(gold, predicted, strict=True) if g == FALLBACK]
            inscope = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != FALLBACK]
            results.append(
                {
                    "threshold": threshold,
                    "unknown_words": words,
                    "unknown_words_max_confidence": max_conf,
                    "accuracy": sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold),
                    "in_scope_accuracy": sum(g == p for g, p in inscope) / len(inscope),
                    "oos_recall": sum(p == FALLBACK for p in oos) / len(oos),
                }
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--intents", type=Path, default=ROOT / "intents", help="directory with intents.yaml and business.yaml"
    )
    parser.add_argument("--heldout", type=Path, help="default: bench/data/heldout.yaml (heldout.<language>.yaml)")
    parser.add_argument("--language", default=DEFAULT_LANGUAGE, help="a language of business.yaml (en, es)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--threshold", type=float, help="override the threshold from intents.yaml")
    parser.add_argument("--repeat", type=int, default=20, help="timing passes over the held-out set")
    parser.add_argument("--cv", action="store_true", help="cross-validate on training data instead")
    args = parser.parse_args(argv)
    english = args.language == DEFAULT_LANGUAGE
    folder = args.intents if english else args.intents / args.language
    if args.heldout is None:
        name = "heldout.yaml" if english else f"heldout.{args.language}.yaml"
        args.heldout = ROOT / "bench" / "data" / name

    catalog = load_intents(folder / "intents.yaml")
    if args.cv:
        business = load_business(args.intents / "business.yaml")
        results = cross_validate(catalog, business_words(business))
        print(f"{'thr':>5} {'unknown':>7} {'<conf':>6} {'acc':>7} {'in-scope':>9} {'oos rec':>8}")
        for r in results:
            print(f"{r['threshold']:5.2f} {r['unknown_words']:7} {r['unknown_words_max_confidence']:6.2f} "
                  f"{r['accuracy']:7.3f} {r['in_scope_accuracy']:9.3f} {r['oos_recall']:8.3f}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
        return 0

    business = (load_business(args.intents / "business.yaml") if english
                else localized_business(args.intents / "business.yaml", args.language))
    examples = load_heldout(args.heldout, catalog)
    started = time.perf_counter()
    # Other languages are read as the bot reads them: accents optional (bot/languages/nlu.py).
    nlu = (NLU(catalog, business, clock=FrozenClock(NOW), threshold=args.threshold) if english
           else language_nlu(args.intents, args.language, clock=FrozenClock(NOW)))
    classifier = nlu.classifier
    train_seconds = time.perf_counter() - started

    report = score(nlu, examples)
    report.update(time_per_message(nlu, [e.text for e in examples], args.repeat))
    report.update(
        {
            "threshold": classifier.threshold,
            "train_examples": sum(len(d.examples) for d in catalog),
            "train_seconds": round(train_seconds, 3),
        }
    )

    print(f"language:            {args.language}")
    print(f"held-out utterances: {report['n']} ({report['oos_n']} out of scope); "
          f"trained on {report['train_examples']} examples in {train_seconds:.2f}s; threshold {classifier.threshold}")
    print(f"accuracy:            {report['accuracy']:.1%}")
    print(f"out-of-scope recall: {report['oos_recall']:.1%}  (precision {report['oos_precision']:.1%})")
    print(
        f"answered by rules:   {report['rule_share']:.1%}; "
        f"classifier-only accuracy {report['classifier_accuracy']:.1%}"
    )
    print(f"predict time:        median {report['predict_median_ms']:.3f} ms, p99 {report['predict_p99_ms']:.3f} ms "
          "(rules + classifier)")
    print(f"classify time:       median {report['classify_median_ms']:.3f} ms, p99 {report['classify_p99_ms']:.3f} ms "
          "(with slot extraction)")
    print("errors by expected intent:")
    for gold in sorted(report["per_intent"]):
        stats = report["per_intent"][gold]
        wrong = report["confusions"].get(gold, {})
        detail = ", ".join(f"{pred} x{n}" for pred, n in sorted(wrong.items(), key=lambda kv: -kv[1]))
        print(f"  {gold:16} {stats['correct']:3}/{stats['n']:<3} {('-> ' + detail) if detail else ''}")
    if report["errors"]:
        print("misclassified:")
        for r in report["errors"]:
            print(
                f"  {r['expected']:>15} -> {r['predicted']:<15} {r['confidence']:.2f} {r['source']:<10} {r['text']!r}"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
