"""Score NLU pipelines on the held-out set; train and time them (`python -m scripts.nlu_eval --config C.yml`).

The library half (`load_examples`, `load_synonyms`, `score`) is pure and framework-free, so the unit tests can
read the training data without Rasa. Only `main` imports Rasa: it trains each config in a temporary directory
with the virtualenv's `rasa` (one training at a time), loads the model in-process, parses every held-out
example, and prints one table row per config (docs/pipeline.md records the results).

Scoring rules:
- intent: the predicted name must equal the gold intent (a retrieval intent `faq/x` counts as `faq`, and the
  FAQ's retrieval intents `faq`, `faq_sync`, ... count as one: the same action answers each);
  `nlu_fallback` is wrong for an in-scope example and right for an `out_of_scope` one, because both end in
  the fallback the user should get;
- entity `exchange`: a predicted entity is correct when its span overlaps an unmatched gold span and its value
  equals the gold value after synonym mapping; each gold span matches at most once;
- other entities (the intake form's `credential_ref`): counted found only on an exact span and value match,
  since an action uses the value as it is;
- FAQ response selection (gold intents `faq/<topic>`, `faq_sync/<topic>`, ...): right when the intent is one
  of the retrieval intents and the ResponseSelector's `intent_response_key` is the gold one: the answer the
  user would get.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from bot.knowledge import is_retrieval_intent
from bot.knowledge.fallback import faq_key
from bot.training import TRAINING_OPTIONS

__all__ = [
    "EXCHANGE_ENTITY",
    "Example",
    "Span",
    "Confusion",
    "EntityError",
    "Scores",
    "load_synonyms",
    "load_examples",
    "strip_annotations",
    "score",
    "percentile",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYNONYMS = PROJECT_ROOT / "data" / "nlu" / "exchanges.yml"
DEFAULT_HELDOUT = PROJECT_ROOT / "tests" / "nlu" / "heldout.yml"
EXCHANGE_ENTITY = "exchange"
FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENT = "out_of_scope"

# Rasa's inline annotation: `[text](entity)`, `[text](entity:value)` (legacy) or `[text]{"entity": ...}`.
# The grammar of rasa.shared.nlu.training_data.entities_parser.ENTITY_REGEX, minus the unused list form.
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(?:\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<json>[^}]+?)\})"
)

Parse = Callable[[str], Mapping[str, Any]]


class Span(NamedTuple):
    """One `exchange` entity: character offsets into the plain text and the normalised value."""

    start: int
    end: int
    value: str


@dataclass(frozen=True)
class Example:
    """One annotated user message."""

    text: str
    intent: str
    entities: tuple[Span, ...] = ()
    # Entities other than `exchange` (e.g. the intake form's `credential_ref`), as (entity, span).
    other_entities: tuple[tuple[str, Span], ...] = ()


@dataclass(frozen=True)
class Confusion:
    """An example whose intent was predicted wrongly."""

    text: str
    expected: str
    predicted: str
    confidence: float


@dataclass(frozen=True)
class EntityError:
    """An example whose `exchange` entities were not all found, or found with a wrong span or value."""

    text: str
    expected: tuple[Span, ...]
    predicted: tuple[Span, ...]


@dataclass(frozen=True)
class Scores:
    """What `score` measured over a list of examples."""

    examples: int
    intent_accuracy: float
    entity_true_positives: int
    entity_false_positives: int
    entity_false_negatives: int
    out_of_scope_total: int
    out_of_scope_to_fallback: int
    other_entities_total: int = 0
    other_entities_found: int = 0
    confusions: list[Confusion] = field(default_factory=list)
    entity_errors: list[EntityError] = field(default_factory=list)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    faq_total: int = 0
    faq_correct: int = 0
    faq_confusions: list[Confusion] = field(default_factory=list)

    @property
    def faq_accuracy(self) -> float:
        """The share of `faq/<topic>` examples that got their topic's answer (1.0 when there are none)."""
        return self.faq_correct / self.faq_total if self.faq_total else 1.0

    @property
    def entity_precision(self) -> float:
        found = self.entity_true_positives + self.entity_false_positives
        return self.entity_true_positives / found if found else float(self.entity_false_negatives == 0)

    @property
    def entity_recall(self) -> float:
        gold = self.entity_true_positives + self.entity_false_negatives
        return self.entity_true_positives / gold if gold else 1.0

    @property
    def entity_f1(self) -> float:
        p, r = self.entity_precision, self.entity_recall
        return 2 * p * r / (p + r) if p + r else 0.0


def load_synonyms(path: Path = DEFAULT_SYNONYMS) -> dict[str, str]:
    """The `synonym:` blocks of a Rasa NLU YAML file as {spelling as written: normalised value}."""
    table: dict[str, str] = {}
    for item in _nlu_items(path):
        if "synonym" in item:
            for spelling in _example_lines(item.get("examples")):
                table[spelling] = str(item["synonym"])
    return table


def strip_annotations(annotated: str) -> str:
    """The text a user typed: `my [cb pro]{"entity": ...} key` becomes `my cb pro key`."""
    return _ANNOTATION.sub(lambda match: match.group("text"), annotated)


def load_examples(path: Path, synonyms: Mapping[str, str] | None = None) -> list[Example]:
    """Every intent example of a Rasa NLU YAML file, with its `exchange` entities normalised.

    A value is normalised the way Rasa's EntitySynonymMapper does it: the annotated value (or, without one,
    the annotated text) is looked up case-insensitively in the synonym table. The table defaults to the
    `synonym:` blocks of data/nlu/exchanges.yml.
    """
    table = load_synonyms() if synonyms is None else synonyms
    folded = {spelling.lower(): value for spelling, value in table.items()}
    examples = []
    for item in _nlu_items(path):
        if "intent" not in item:
            continue
        intent = str(item["intent"])
        for line in _example_lines(item.get("examples")):
            text, spans = _parse_annotated(line, folded, where=f"{path}: {intent}: {line!r}")
            exchanges = tuple(span for entity, span in spans if entity == EXCHANGE_ENTITY)
            others = tuple((entity, span) for entity, span in spans if entity != EXCHANGE_ENTITY)
            examples.append(Example(text=text, intent=intent, entities=exchanges, other_entities=others))
    return examples


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def score(examples: Iterable[Example], parse: Parse, latencies_ms: Sequence[float] | None = None) -> Scores:
    """Parse every example and score intents and `exchange` entities.

    Args:
        examples: the gold examples.
        parse: text -> a dict shaped like Rasa's `/model/parse` response.
        latencies_ms: parse durations measured by the caller, if any; they become the p50/p95 of the result.
    """
    total = correct = tp = fp = fn = oos_total = oos_fallback = others_total = others_found = 0
    faq_total = faq_correct = 0
    confusions: list[Confusion] = []
    faq_confusions: list[Confusion] = []
    entity_errors: list[EntityError] = []
    examples = list(examples)
    # The answer is the selector's pick under any retrieval intent (actions/faq.py), so a pick under a sibling
    # retrieval intent still gives the user the right answer.
    for example in examples:
        result = parse(example.text)
        intent = result.get("intent") or {}
        predicted = str(intent.get("name") or "").split("/")[0]
        gold_intent = example.intent.split("/")[0]
        total += 1
        if example.intent == OUT_OF_SCOPE_INTENT:
            oos_total += 1
            ok = predicted in (OUT_OF_SCOPE_INTENT, FALLBACK_INTENT)
            oos_fallback += ok
        else:
            # The FAQ's retrieval intents are one intent to the user: each leads to the same answer action,
            # which answers the selector's pick whichever of them NLU chose (scored just below).
            ok = predicted == gold_intent or (
                is_retrieval_intent(gold_intent) and is_retrieval_intent(predicted)
            )
        if gold_intent != example.intent:
            faq_total += 1
            picked, confidence = faq_key(result)
            key = picked or ""
            if is_retrieval_intent(predicted) and key == example.intent:
                faq_correct += 1
            else:
                faq_confusions.append(
                    Confusion(
                        example.text,
                        example.intent,
                        key if is_retrieval_intent(predicted) else predicted,
                        confidence,
                    )
                )
        if ok:
            correct += 1
        else:
            confusions.append(
                Confusion(example.text, example.intent, predicted, float(intent.get("confidence") or 0.0))
            )
        found = _predicted_spans(result.get("entities") or [])
        hits, misses = _match(example.entities, found)
        tp += hits
        fp += len(found) - hits
        fn += misses
        if hits != len(found) or misses:
            entity_errors.append(EntityError(example.text, example.entities, found))
        for name, gold in example.other_entities:
            others_total += 1
            others_found += any(
                entity.get("entity") == name
                and (int(entity["start"]), int(entity["end"]), str(entity.get("value")))
                == (gold.start, gold.end, gold.value)
                for entity in result.get("entities") or []
            )
    return Scores(
        examples=total,
        intent_accuracy=correct / total if total else 0.0,
        entity_true_positives=tp,
        entity_false_positives=fp,
        entity_false_negatives=fn,
        out_of_scope_total=oos_total,
        out_of_scope_to_fallback=oos_fallback,
        other_entities_total=others_total,
        other_entities_found=others_found,
        confusions=confusions,
        entity_errors=entity_errors,
        latency_p50_ms=percentile(latencies_ms, 50) if latencies_ms else None,
        latency_p95_ms=percentile(latencies_ms, 95) if latencies_ms else None,
        faq_total=faq_total,
        faq_correct=faq_correct,
        faq_confusions=faq_confusions,
    )


def _nlu_items(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = document.get("nlu") or []
    return [item for item in items if isinstance(item, dict)]


def _example_lines(block: object) -> list[str]:
    # Rasa writes examples as a literal block of "- text" lines; a YAML list is accepted too.
    if isinstance(block, list):
        return [str(line).strip() for line in block]
    lines = str(block or "").splitlines()
    return [line.strip()[2:].strip() for line in lines if line.strip().startswith("- ")]


def _parse_annotated(
    line: str, synonyms: Mapping[str, str], where: str
) -> tuple[str, list[tuple[str, Span]]]:
    parts: list[str] = []
    spans: list[tuple[str, Span]] = []
    offset = 0  # length of the plain text built so far
    cursor = 0  # position in the annotated line
    for match in _ANNOTATION.finditer(line):
        parts.append(line[cursor : match.start()])
        offset += match.start() - cursor
        surface = match.group("text")
        entity, value = _entity_and_value(match, where)
        if not entity:
            raise ValueError(f"{where}: entity annotation without an entity name")
        raw = value if value is not None else surface
        spans.append((entity, Span(offset, offset + len(surface), synonyms.get(raw.lower(), raw))))
        parts.append(surface)
        offset += len(surface)
        cursor = match.end()
    parts.append(line[cursor:])
    return "".join(parts), spans


def _entity_and_value(match: re.Match[str], where: str) -> tuple[str, str | None]:
    if match.group("json") is None:
        return match.group("entity").strip(), match.group("value")
    try:
        attributes = json.loads("{" + match.group("json") + "}")
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: malformed entity annotation: {error}") from None
    value = attributes.get("value")
    return str(attributes.get("entity", "")), None if value is None else str(value)


def _predicted_spans(entities: Iterable[Mapping[str, Any]]) -> tuple[Span, ...]:
    # Two extractors (DIET and RegexEntityExtractor) can both report one mention, with the same or overlapping
    # spans ("Gemini exchange" and "Gemini") and the same value; the user gets one slot value from it, so it
    # counts once. Overlapping predictions with different values stay apart: one of them is wrong.
    spans = sorted(
        (
            Span(int(entity["start"]), int(entity["end"]), str(entity.get("value")))
            for entity in entities
            if entity.get("entity") == EXCHANGE_ENTITY
        ),
        key=lambda span: (span.start, span.start - span.end),
    )
    kept: list[Span] = []
    for span in spans:
        if not any(_overlap(span, other) and span.value == other.value for other in kept):
            kept.append(span)
    return tuple(kept)


def _overlap(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def _match(gold: Sequence[Span], found: Sequence[Span]) -> tuple[int, int]:
    """(true positives, false negatives): each gold span is claimed by at most one correct prediction."""
    unmatched = list(gold)
    hits = 0
    for span in found:
        for candidate in unmatched:
            if _overlap(span, candidate) and span.value == candidate.value:
                unmatched.remove(candidate)
                hits += 1
                break
    return hits, len(unmatched)


# --- the command: train, load, time, score ------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One config's measurement."""

    config: Path
    train_seconds: float
    scores: Scores


def _train(config: Path, out_dir: Path, full: bool) -> tuple[Path, float]:
    rasa = Path(sys.executable).with_name("rasa")
    name = config.stem
    if full:
        command = [
            str(rasa), "train", "--config", str(config), "--domain", str(PROJECT_ROOT / "domain.yml"),
            "--data", str(PROJECT_ROOT / "data"), "--out", str(out_dir), "--fixed-model-name", name,
            *TRAINING_OPTIONS,
        ]  # fmt: skip
    else:
        command = [
            str(rasa), "train", "nlu", "--config", str(config), "--nlu", str(PROJECT_ROOT / "data" / "nlu"),
            "--domain", str(PROJECT_ROOT / "domain.yml"), "--out", str(out_dir), "--fixed-model-name", name,
        ]  # fmt: skip
    # RASA_MAX_CACHE_SIZE=0 turns Rasa's graph cache (.rasa/cache, shared with `make train`) off: with it, a
    # config that shares featurizers with an earlier one trains in seconds and the timing means nothing.
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "RASA_MAX_CACHE_SIZE": "0",
    }
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise SystemExit(f"training {config} failed with exit code {completed.returncode}")
    return out_dir / f"{name}.tar.gz", elapsed


def _timed_parser(model: Path) -> tuple[Parse, list[float]]:
    import asyncio
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    # Unconfigured, structlog prints every parse at debug level on stdout, over the table.
    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)
    loop = asyncio.new_event_loop()
    agent = Agent.load(str(model))
    latencies: list[float] = []

    def parse(text: str) -> Mapping[str, Any]:
        started = time.perf_counter()
        result: Mapping[str, Any] = loop.run_until_complete(agent.parse_message(text))
        latencies.append((time.perf_counter() - started) * 1000)
        return result

    # The first calls build TensorFlow's graph; they are start-up cost, not per-message latency.
    for warm_up in ("hello", "my kraken key is broken", "how do i upload a csv"):
        parse(warm_up)
    latencies.clear()
    return parse, latencies


def measure(config: Path, heldout: Path, full: bool, model: Path | None = None) -> Run:
    """Train `config` (unless a model is given), then score the held-out examples with it."""
    examples = load_examples(heldout)
    with tempfile.TemporaryDirectory(prefix="nlu-eval-") as tmp:
        train_seconds = float("nan")
        if model is None:
            model, train_seconds = _train(config, Path(tmp), full)
        parse, latencies = _timed_parser(model)
        scores = score(examples, parse)
        # `parse` filled `latencies` while `score` ran.
        scores = replace(
            scores, latency_p50_ms=percentile(latencies, 50), latency_p95_ms=percentile(latencies, 95)
        )
    return Run(config=config, train_seconds=train_seconds, scores=scores)


def _report(runs: Sequence[Run], verbose: bool) -> str:
    header = (
        "| config | train (s) | intent acc | exchange P | exchange R | exchange F1 | OOS→fallback "
        "| other entities | FAQ selection | p50 (ms) | p95 (ms) |"
    )
    lines = [header, "|" + "---|" * 11]
    for run in runs:
        s = run.scores
        lines.append(
            f"| {run.config.name} | {run.train_seconds:.0f} | {s.intent_accuracy:.3f} | "
            f"{s.entity_precision:.3f} | {s.entity_recall:.3f} | {s.entity_f1:.3f} | "
            f"{s.out_of_scope_to_fallback}/{s.out_of_scope_total} | "
            f"{s.other_entities_found}/{s.other_entities_total} | "
            f"{s.faq_correct}/{s.faq_total} ({s.faq_accuracy:.3f}) | "
            f"{s.latency_p50_ms or 0:.1f} | {s.latency_p95_ms or 0:.1f} |"
        )
    if verbose:
        for run in runs:
            lines.append(f"\n{run.config.name}: {len(run.scores.confusions)} intent errors")
            for c in run.scores.confusions:
                lines.append(f"  {c.expected:>20} -> {c.predicted:<20} {c.confidence:.2f}  {c.text}")
            lines.append(f"{run.config.name}: {len(run.scores.faq_confusions)} FAQ selection errors")
            for c in run.scores.faq_confusions:
                lines.append(f"  {c.expected:>32} -> {c.predicted:<32} {c.confidence:.2f}  {c.text}")
            lines.append(f"{run.config.name}: {len(run.scores.entity_errors)} entity errors")
            for e in run.scores.entity_errors:
                lines.append(f"  {e.text!r}: expected {list(e.expected)}, got {list(e.predicted)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, action="append", required=True, help="repeat to compare")
    parser.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT)
    parser.add_argument("--full", action="store_true", help="`rasa train` (with policies), not `train nlu`")
    parser.add_argument(
        "--model", type=Path, help="score this trained model instead of training (one config)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every misclassified example")
    args = parser.parse_args(argv)
    if args.model and len(args.config) != 1:
        parser.error("--model scores one config")

    runs = []
    for config in args.config:
        runs.append(measure(config, args.heldout, args.full, args.model))
        print(_report(runs[-1:], verbose=False).splitlines()[-1], file=sys.stderr, flush=True)
    print(_report(runs, verbose=args.verbose))
    if args.json:
        rows = [
            {
                "config": str(run.config),
                "train_seconds": run.train_seconds,
                "intent_accuracy": run.scores.intent_accuracy,
                "entity_precision": run.scores.entity_precision,
                "entity_recall": run.scores.entity_recall,
                "entity_f1": run.scores.entity_f1,
                "out_of_scope": [run.scores.out_of_scope_to_fallback, run.scores.out_of_scope_total],
                "other_entities": [run.scores.other_entities_found, run.scores.other_entities_total],
                "faq_selection": [run.scores.faq_correct, run.scores.faq_total],
                "latency_p50_ms": run.scores.latency_p50_ms,
                "latency_p95_ms": run.scores.latency_p95_ms,
            }
            for run in runs
        ]
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
