"""The NLU training data and the held-out set keep the contract of DESIGN §3 and stay apart.

Reads the YAML directly (no Rasa import, no model), so it runs in well under a second.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.exchange_ids import EXCHANGE_IDS, normalize_exchange
from scripts.nlu_eval import Example, Span, load_examples, load_synonyms, score, strip_annotations

ROOT = Path(__file__).resolve().parents[2]

TRAINING_FILES = sorted((ROOT / "data" / "nlu").glob("*.yml"))
HELDOUT_FILE = ROOT / "tests" / "nlu" / "heldout.yml"
SYNONYMS_FILE = ROOT / "data" / "nlu" / "exchanges.yml"

MIN_TRAINING_EXAMPLES = 20
MIN_HELDOUT_EXAMPLES = 6


def _domain_intents(*, external: bool = False) -> list[str]:
    """The intents users say. `EXTERNAL_*` intents (Rasa's convention) only ever arrive through the
    trigger_intent API (proactive outreach, data/rules/outreach.yml), so no user example measures them;
    `external=True` includes them."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    intents = [next(iter(i)) if isinstance(i, dict) else str(i) for i in domain["intents"]]
    return [intent for intent in intents if external or not intent.startswith("EXTERNAL_")]


def _fold(text: str) -> str:
    return " ".join(strip_annotations(text).lower().split())


@pytest.fixture(scope="module")
def training() -> list[Example]:
    return [example for path in TRAINING_FILES for example in load_examples(path)]


@pytest.fixture(scope="module")
def heldout() -> list[Example]:
    return load_examples(HELDOUT_FILE)


def test_training_data_is_one_rasa_3_1_file_per_topic() -> None:
    assert {path.name for path in TRAINING_FILES} >= {"chitchat.yml", "exchanges.yml"}
    for path in TRAINING_FILES:
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["version"] == "3.1", path.name


def test_heldout_set_is_not_under_data_so_rasa_never_trains_on_it() -> None:
    assert ROOT / "data" not in HELDOUT_FILE.parents


def test_heldout_and_training_share_no_example(training: list[Example], heldout: list[Example]) -> None:
    shared = {_fold(e.text) for e in training} & {_fold(e.text) for e in heldout}
    assert not shared, f"held-out examples also in training data: {sorted(shared)}"


def test_no_example_is_labelled_with_two_intents(training: list[Example]) -> None:
    intents_by_text: dict[str, set[str]] = {}
    for example in training:
        intents_by_text.setdefault(_fold(example.text), set()).add(example.intent)
    assert {text: i for text, i in intents_by_text.items() if len(i) > 1} == {}


def _base(intent: str) -> str:
    """A retrieval intent's base: `faq/tab_open` is intent `faq` (its topic is the response key)."""
    return intent.split("/")[0]


def test_every_domain_intent_has_enough_training_examples(training: list[Example]) -> None:
    counts = Counter(_base(example.intent) for example in training)
    too_few = {i: counts[i] for i in _domain_intents() if counts[i] < MIN_TRAINING_EXAMPLES}
    assert too_few == {}


def test_every_domain_intent_has_enough_heldout_examples(heldout: list[Example]) -> None:
    counts = Counter(_base(example.intent) for example in heldout)
    too_few = {i: counts[i] for i in _domain_intents() if counts[i] < MIN_HELDOUT_EXAMPLES}
    assert too_few == {}


def test_data_uses_only_domain_intents(training: list[Example], heldout: list[Example]) -> None:
    unknown = {_base(e.intent) for e in training + heldout} - set(_domain_intents(external=True))
    assert unknown == set()


# -- the FAQ's retrieval intents (issue 14) ------------------------------------------------------------------

MIN_FAQ_TOPICS = 40
MIN_FAQ_TRAINING = 8
MIN_FAQ_HELDOUT = 2
QUESTIONS_FILE = ROOT / "tests" / "nlu" / "questions_heldout.yml"


def _topic(intent: str) -> str | None:
    """The FAQ topic of a retrieval intent's example (`faq_sync/tab_open` -> `tab_open`), else None."""
    from bot.knowledge import is_retrieval_intent

    base, _, topic = intent.partition("/")
    return topic if topic and is_retrieval_intent(base) else None


def _faq_topics() -> dict[str, str]:
    """The FAQ's retrieval topics (not the answers to plain contract intents), with their titles."""
    from bot.knowledge import load_faq

    return {topic.topic: topic.title for topic in load_faq().values() if not topic.intents}


def test_the_faq_has_at_least_40_retrieval_topics_each_with_8_training_phrasings(
    training: list[Example],
) -> None:
    counts = Counter(_topic(e.intent) for e in training)
    topics = _faq_topics()
    assert len(topics) >= MIN_FAQ_TOPICS
    assert {t: counts[t] for t in topics if counts[t] < MIN_FAQ_TRAINING} == {}


def test_every_faq_topic_has_heldout_phrasings(heldout: list[Example]) -> None:
    counts = Counter(_topic(e.intent) for e in heldout)
    assert {t: counts[t] for t in _faq_topics() if counts[t] < MIN_FAQ_HELDOUT} == {}


def test_every_retrieval_intent_of_the_data_is_a_topic_of_the_knowledge_base(
    training: list[Example], heldout: list[Example]
) -> None:
    keys = {e.intent for e in training + heldout if "/" in e.intent}
    assert {key for key in keys if _topic(key) not in _faq_topics()} == set()
    # A topic lives under one retrieval intent only, or the selector's pick would disagree with the intent.
    assert len(keys) == len({_topic(key) for key in keys})


def test_each_topic_title_is_a_training_phrasing_so_the_fallbacks_buttons_are_understood(
    training: list[Example],
) -> None:
    phrasings = {(_topic(e.intent), _fold(e.text)) for e in training}
    missing = {t: title for t, title in _faq_topics().items() if (t, _fold(title)) not in phrasings}
    assert missing == {}


def test_the_everyday_questions_are_never_trained_on(training: list[Example]) -> None:
    questions = yaml.safe_load(QUESTIONS_FILE.read_text(encoding="utf-8"))["questions"]
    assert len(questions) >= 60
    trained = {_fold(e.text) for e in training}
    assert {q["ask"] for q in questions if _fold(q["ask"]) in trained} == set()


def test_faq_selection_counts_only_the_right_topic_under_the_faq_intent() -> None:
    def parse_as(intent: str, key: str) -> dict[str, object]:
        return {
            **_parse_as(intent),
            "response_selector": {"default": {"response": {"intent_response_key": key, "confidence": 0.8}}},
        }

    examples = [Example("can i close the tab", "faq/tab_open")]
    assert score(examples, lambda text: parse_as("faq", "faq/tab_open")).faq_accuracy == 1.0
    wrong_topic = score(examples, lambda text: parse_as("faq", "faq/resync"))
    assert wrong_topic.intent_accuracy == 1.0 and wrong_topic.faq_accuracy == 0.0
    assert score(examples, lambda text: parse_as("update_key", "faq/tab_open")).faq_accuracy == 0.0


def test_a_sibling_faq_intent_counts_as_the_right_intent_and_the_topic_decides_the_answer() -> None:
    examples = [Example("is my old key removed as soon as i update", "faq_sync/old_credential_kept")]

    def parse_as(intent: str, key: str) -> dict[str, object]:
        return {
            **_parse_as(intent),
            "response_selector": {"default": {"response": {"intent_response_key": key, "confidence": 0.8}}},
        }

    sibling = score(examples, lambda text: parse_as("faq", "faq_sync/old_credential_kept"))
    assert sibling.intent_accuracy == 1.0 and sibling.faq_accuracy == 1.0
    assert (
        score(examples, lambda text: parse_as("update_key", "faq_sync/old_credential_kept")).intent_accuracy
        == 0.0
    )


def test_every_synonym_maps_to_an_exchange_id() -> None:
    assert set(load_synonyms(SYNONYMS_FILE).values()) <= set(EXCHANGE_IDS)


def test_every_synonym_spelling_normalises_to_the_same_id_in_bot_exchange_ids() -> None:
    disagreements = {
        spelling: (exchange_id, normalize_exchange(spelling))
        for spelling, exchange_id in load_synonyms(SYNONYMS_FILE).items()
        if normalize_exchange(spelling) != exchange_id
    }
    assert disagreements == {}


def test_every_exchange_id_has_synonyms_listed() -> None:
    assert set(load_synonyms(SYNONYMS_FILE).values()) == set(EXCHANGE_IDS)


def _lookup_entries() -> list[str]:
    items = yaml.safe_load(SYNONYMS_FILE.read_text(encoding="utf-8"))["nlu"]
    (lookup,) = [item for item in items if item.get("lookup") == "exchange"]
    return [line[2:].strip() for line in lookup["examples"].splitlines() if line.startswith("- ")]


def test_every_lookup_entry_is_a_known_exchange_spelling() -> None:
    assert [entry for entry in _lookup_entries() if normalize_exchange(entry) is None] == []


def test_lookup_lists_longer_names_before_names_they_start_with() -> None:
    # Rasa joins the entries into one `\bA\b|\bB\b` alternation: "binance" listed first would win over
    # "binance us" and tag the wrong exchange.
    entries = _lookup_entries()
    shadowed = [
        (short, long)
        for i, short in enumerate(entries)
        for long in entries[i + 1 :]
        if long.startswith(short + " ") or long.startswith(short + ".")
    ]
    assert shadowed == []


def _lookup_pattern() -> re.Pattern[str]:
    """The regex Rasa's RegexEntityExtractor builds from the lookup (`_generate_lookup_regex` in
    rasa/nlu/utils/pattern_utils.py, with word boundaries; `case_sensitive: false` in config.yml)."""
    alternatives = "|".join(rf"\b{re.escape(entry)}\b" for entry in _lookup_entries())
    return re.compile(f"({alternatives})", re.IGNORECASE)


def _synonym_spellings() -> set[str]:
    items = yaml.safe_load(SYNONYMS_FILE.read_text(encoding="utf-8"))["nlu"]
    return {
        line[2:].strip().lower()
        for item in items
        if "synonym" in item
        for line in item["examples"].splitlines()
        if line.startswith("- ")
    }


def test_every_synonym_spelling_is_in_the_lookup_so_the_extractor_tags_it() -> None:
    # DIET classifies intents only (config.yml): a spelling missing here is never tagged as an exchange.
    names_that_match_alone = {spelling for spelling in _synonym_spellings() if spelling.endswith(" exchange")}
    missing = _synonym_spellings() - names_that_match_alone - set(_lookup_entries())
    assert sorted(missing) == []


def test_the_lookup_tags_every_annotated_exchange_of_the_training_data_where_it_is_annotated(
    training: list[Example],
) -> None:
    pattern = _lookup_pattern()
    untagged = []
    for example in training:
        found = {(match.start(), match.end()) for match in pattern.finditer(example.text)}
        untagged += [example.text for span in example.entities if (span.start, span.end) not in found]
    assert untagged == []


def test_the_lookup_does_not_tag_exchange_words_inside_other_words() -> None:
    pattern = _lookup_pattern()
    assert [m.group(0) for m in pattern.finditer("the okxx gateway and krakenish cdcs")] == []
    assert [m.group(0) for m in pattern.finditer("Binance US, not binance")] == ["Binance US", "binance"]


@pytest.mark.parametrize("name", ["training", "heldout"])
def test_every_annotated_exchange_is_one_of_the_twelve_ids(name: str, request: pytest.FixtureRequest) -> None:
    examples: list[Example] = request.getfixturevalue(name)
    values = {span.value for example in examples for span in example.entities}
    assert values <= set(EXCHANGE_IDS), f"not an exchange id: {sorted(values - set(EXCHANGE_IDS))}"


def test_every_annotated_spelling_is_the_exchange_it_is_labelled(
    training: list[Example], heldout: list[Example]
) -> None:
    mislabelled = [
        (example.text[span.start : span.end], span.value)
        for example in training + heldout
        for span in example.entities
        if normalize_exchange(example.text[span.start : span.end]) != span.value
    ]
    assert mislabelled == []


def test_every_exchange_is_mentioned_often_in_training(training: list[Example]) -> None:
    mentions = Counter(span.value for example in training for span in example.entities)
    assert {exchange: mentions[exchange] for exchange in EXCHANGE_IDS if mentions[exchange] < 15} == {}


def test_out_of_scope_covers_nearby_crypto_tax_questions(training: list[Example]) -> None:
    out_of_scope = " ".join(e.text.lower() for e in training if e.intent == "out_of_scope")
    for topic in ("tax", "price", "buy", "cost basis", "turbotax", "fifo"):
        assert topic in out_of_scope, topic


def test_annotations_parse_to_spans_over_the_plain_text(tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text(
        'version: "3.1"\nnlu:\n  - intent: inform\n    examples: |\n'
        '      - my [CB Pro]{"entity": "exchange", "value": "coinbase"} and [kraken](exchange) keys\n'
        "  - synonym: binance_us\n    examples: |\n      - binance.us\n"
        "  - intent: sync_stopped\n    examples: |\n      - [Binance.US](exchange) stopped\n",
        encoding="utf-8",
    )
    first, second = load_examples(nlu, synonyms=load_synonyms(nlu))
    assert first.text == "my CB Pro and kraken keys"
    assert [(first.text[s.start : s.end], s.value) for s in first.entities] == [
        ("CB Pro", "coinbase"),
        ("kraken", "kraken"),
    ]
    assert second.entities[0].value == "binance_us"  # synonym applied case-insensitively, as Rasa does


def test_entities_other_than_exchange_are_kept_apart_from_the_exchange_spans(tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text(
        "nlu:\n  - intent: credentials_submitted\n    examples: |\n      - done [pc_x1](credential_ref)\n",
        encoding="utf-8",
    )
    (example,) = load_examples(nlu, synonyms={})
    assert example.entities == ()
    assert example.other_entities == (("credential_ref", Span(5, 10, "pc_x1")),)


def test_every_annotated_entity_is_declared_in_the_domain(
    training: list[Example], heldout: list[Example]
) -> None:
    # An entry is a name, or a one-key mapping from the name to its settings (`influence_conversation`).
    entries = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["entities"]
    declared = {next(iter(e)) if isinstance(e, dict) else str(e) for e in entries}
    used = {name for e in training + heldout for name, _ in e.other_entities}
    assert used - declared == set()


def test_credential_references_look_like_the_intake_forms(
    training: list[Example], heldout: list[Example]
) -> None:
    # bot/store/services.py issues "pc_" + secrets.token_urlsafe(...); the chat never sees anything else.
    refs = [
        span.value for e in training + heldout for name, span in e.other_entities if name == "credential_ref"
    ]
    assert refs and all(re.fullmatch(r"pc_[A-Za-z0-9_-]+", ref) for ref in refs)


def test_examples_are_plain_lines_without_leftover_markup(training: list[Example]) -> None:
    leftovers = [e.text for e in training if re.search(r"\]\(|\]\{|\[\w", e.text)]
    assert leftovers == []


def _parse_as(intent: str, *entities: tuple[int, int, str]) -> dict[str, object]:
    return {
        "intent": {"name": intent, "confidence": 0.9},
        "entities": [{"entity": "exchange", "start": s, "end": e, "value": v} for s, e, v in entities],
    }


def test_nlu_fallback_is_wrong_for_an_in_scope_message_and_right_for_an_out_of_scope_one() -> None:
    examples = [
        Example("my kraken stopped syncing", "sync_stopped"),
        Example("price of btc?", "out_of_scope"),
    ]
    scores = score(examples, lambda text: _parse_as("nlu_fallback"))
    assert scores.intent_accuracy == 0.5
    assert scores.out_of_scope_to_fallback == scores.out_of_scope_total == 1
    assert [c.expected for c in scores.confusions] == ["sync_stopped"]


def test_a_retrieval_intent_counts_as_its_base_intent() -> None:
    scores = score([Example("passphrase?", "ask_passphrase")], lambda text: _parse_as("ask_passphrase/what"))
    assert scores.intent_accuracy == 1.0


def test_an_entity_is_right_when_it_overlaps_the_gold_span_with_the_gold_value() -> None:
    gold = Example("my coinbase pro key", "inform", (Span(3, 15, "coinbase"),))
    assert score([gold], lambda text: _parse_as("inform", (3, 11, "coinbase"))).entity_f1 == 1.0
    wrong_value = score([gold], lambda text: _parse_as("inform", (3, 15, "coinbase pro")))
    assert (wrong_value.entity_precision, wrong_value.entity_recall) == (0.0, 0.0)
    elsewhere = score([gold], lambda text: _parse_as("inform", (16, 19, "coinbase")))
    assert elsewhere.entity_false_positives == elsewhere.entity_false_negatives == 1


def test_one_mention_reported_by_two_extractors_counts_once() -> None:
    gold = Example("Gemini exchange", "inform", (Span(0, 6, "gemini"),))
    scores = score([gold], lambda text: _parse_as("inform", (0, 15, "gemini"), (0, 6, "gemini")))
    assert (scores.entity_true_positives, scores.entity_false_positives) == (1, 0)


def test_a_missed_binance_us_tagged_as_binance_is_a_false_positive_and_a_miss() -> None:
    gold = Example("binance us", "inform", (Span(0, 10, "binance_us"),))
    scores = score([gold], lambda text: _parse_as("inform", (0, 7, "binance")))
    assert (scores.entity_false_positives, scores.entity_false_negatives) == (1, 1)


def test_latency_percentiles_come_from_the_timings_supplied() -> None:
    scores = score([], lambda text: _parse_as("greet"), latencies_ms=[float(ms) for ms in range(1, 101)])
    assert scores.latency_p50_ms == pytest.approx(50.5)
    assert scores.latency_p95_ms == pytest.approx(95.05)
    assert score([], lambda text: _parse_as("greet")).latency_p50_ms is None
