"""Which messages of the e2e and fault tests a new model reads differently: run it after a retraining, before
the suites (`python -m scripts.nlu_margins OLD.tar.gz NEW.tar.gz`, about a minute).

Why: DIET's reading of a borderline message moves with any change to its inputs (docs/knowledge.md, "CSAT's
intents and DIET"): a few new examples, a new intent in the domain. The e2e and fault tests send real
sentences through the real model, so such a move fails one of them twenty minutes into a run. This lists the
sentences those tests send (every plain string literal of a few words in `tests/e2e` and `tests/faults`: some
are assertions, not messages, and are parsed anyway; they only show when their reading moves) and prints each
one whose top intent changed between the two models, or whose reading on the new model is unsure, next to the
held-out scores of both. A listed sentence is a reason to look, not a failure: a paused conversation, for
one, never asks the NLU.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bot.config import PROJECT_ROOT
from scripts.nlu_eval import DEFAULT_HELDOUT, _timed_parser, load_examples, score

SUITES = (PROJECT_ROOT / "tests" / "e2e", PROJECT_ROOT / "tests" / "faults")
# Below this the FallbackClassifier's threshold (0.45) is near enough that the next retraining may cross it.
UNSURE_BELOW = 0.7
# Words, not code: no braces, markup, paths, SQL or format strings.
_CODE_LIKE = re.compile(r"[{}=<>\[\]_\\|^$]|\.py\b|https?:|%s|\bSELECT\b")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            nodes.add(id(node.value))
    return nodes


def looks_like_a_message(text: str) -> bool:
    """A literal a person could type: starts with a letter, 2-25 words, nothing code-like."""
    return (
        text == text.strip()
        and 2 <= len(text.split()) <= 25
        and text[:1].isalpha()
        and not _CODE_LIKE.search(text)
    )


def phrasings(paths: Iterable[Path]) -> list[str]:
    """The distinct message-like string literals of the Python files under `paths`, sorted."""
    found: set[str] = set()
    for root in paths:
        for source in sorted(root.rglob("*.py")):
            tree = ast.parse(source.read_text(), filename=str(source))
            docstrings = _docstring_nodes(tree)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                    and looks_like_a_message(node.value)
                ):
                    found.add(node.value)
    return sorted(found)


def _top(result: Mapping[str, Any]) -> tuple[str, float]:
    intent = result.get("intent") or {}
    return str(intent.get("name")), float(intent.get("confidence") or 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("old", type=Path, help="the model the suites last passed on")
    parser.add_argument("new", type=Path, help="the retrained model")
    args = parser.parse_args(argv)
    for model in (args.old, args.new):
        # Rasa reads a missing file as "the newest model in models/": the wrong one would be compared.
        if not model.is_file():
            parser.error(f"no model file at {model}")

    texts = phrasings(SUITES)
    examples = load_examples(DEFAULT_HELDOUT)
    readings: dict[str, dict[str, tuple[str, float]]] = {}
    for label, model in (("old", args.old), ("new", args.new)):
        parse, _ = _timed_parser(model)
        readings[label] = {text: _top(parse(text)) for text in texts}
        scores = score(examples, parse)
        print(
            f"{label} {model.name}: held-out intent {scores.intent_accuracy:.3f}, "
            f"FAQ selection {scores.faq_accuracy:.3f}, exchange F1 {scores.entity_f1:.3f}, "
            f"out of scope to the fallback {scores.out_of_scope_to_fallback}/{scores.out_of_scope_total}"
        )
    moved = 0
    print(f"\n{len(texts)} test sentences; moved, or under {UNSURE_BELOW} on the new model:")
    for text in texts:
        (old_intent, old_conf), (new_intent, new_conf) = readings["old"][text], readings["new"][text]
        if old_intent != new_intent or new_conf < UNSURE_BELOW:
            moved += 1
            print(f"  {old_intent} {old_conf:.2f} -> {new_intent} {new_conf:.2f}  {text!r}")
    print(f"{moved} listed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
