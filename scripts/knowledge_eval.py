"""Measure the knowledge search (`python -m scripts.knowledge_eval`): accuracy, threshold, latency, memory.

The questions are the held-out set's (tests/nlu/heldout.yml): every `faq/<topic>` example and every example of
a contract question answered by an FAQ topic (`ask_passphrase` -> `passphrase`) is a question whose passage
must be its topic's; the out-of-scope examples are questions the search must not answer. For each candidate
threshold the table shows how many topic questions would be answered, how many of those rightly, and how many
out-of-scope questions would wrongly get a passage. Memory is the resident set added by building the index
(scikit-learn's import included), latency the time of one search on the built index.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

from scripts.nlu_eval import DEFAULT_HELDOUT, OUT_OF_SCOPE_INTENT, load_examples, percentile

THRESHOLDS = (0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40)


def _rss_mib() -> float:
    # Linux reports ru_maxrss in KiB; the peak is what the process had to hold.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT)
    args = parser.parse_args(argv)

    from bot.knowledge import load_faq, topic_for_intent

    load_faq()
    before = _rss_mib()
    started = time.perf_counter()
    from bot.knowledge.search import AMBIGUITY_MARGIN, SCORE_THRESHOLD, default_index

    index = default_index()
    build_ms = (time.perf_counter() - started) * 1000
    added = _rss_mib() - before

    examples = load_examples(args.heldout)
    questions = [(e.text, topic_for_intent(e.intent)) for e in examples]
    topical = [(text, topic) for text, topic in questions if topic is not None]
    negatives = [e.text for e in examples if e.intent == OUT_OF_SCOPE_INTENT]

    timings: list[float] = []
    results = []
    for text, topic in topical:
        t0 = time.perf_counter()
        hits = index.search(text)
        timings.append((time.perf_counter() - t0) * 1000)
        # The margin over the runner-up counts as the score: an ambiguous best hit is not given as the answer.
        margin = hits[0].score - hits[1].score if len(hits) > 1 else 1.0
        score = hits[0].score if margin >= AMBIGUITY_MARGIN else 0.0
        results.append((text, topic, hits[0].passage.topic, score))
    negative_scores = []
    for text in negatives:
        hits = index.search(text)
        margin = hits[0].score - hits[1].score if len(hits) > 1 else 1.0
        negative_scores.append(hits[0].score if margin >= AMBIGUITY_MARGIN else 0.0)

    top1 = sum(best == topic for _, topic, best, _ in results) / len(results)
    print(
        f"ambiguity margin {AMBIGUITY_MARGIN} (a best hit closer than that to the runner-up is not answered)"
    )
    print(f"search over {len(topical)} topic questions, {len(negatives)} out-of-scope questions")
    print(f"top-1 accuracy {top1:.3f}; index build {build_ms:.0f} ms, +{added:.1f} MiB resident")
    print(
        f"latency per search: p50 {percentile(timings, 50):.2f} ms, p95 {percentile(timings, 95):.2f} ms, "
        f"mean {statistics.mean(timings):.2f} ms"
    )
    print("| threshold | answered | right when answered | out-of-scope answered |")
    print("|---|---|---|---|")
    for threshold in THRESHOLDS:
        answered = [r for r in results if r[3] >= threshold]
        right = sum(r[1] == r[2] for r in answered)
        wrong_oos = sum(score >= threshold for score in negative_scores)
        mark = " (chosen)" if abs(threshold - SCORE_THRESHOLD) < 1e-9 else ""
        share = right / (len(answered) or 1)
        print(
            f"| {threshold:.2f}{mark} | {len(answered)}/{len(results)} | "
            f"{right}/{len(answered) or 1} ({share:.3f}) | {wrong_oos}/{len(negatives)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
