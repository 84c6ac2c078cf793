"""Parse a text the NLU pipeline has already parsed from a bounded cache of its answers.

Why: the parse was the largest share of the Rasa server's event loop under `make bench`'s load (py-spy, about
a quarter of its busy time: DIET, the response selector and their sparse features; docs/bench.md, "Issue 14:
the parse"), and people send the same short messages over and over ("hi", "yes", "thanks", "no that's all").

Exactness: KeyMedic's pipeline has no context. Its parse graph reads the message alone, never the tracker, and
of the message only its text reaches the parse's output (`only_output_properties`: Rasa's message id and
metadata are not output properties, and no component of the pipeline reads them). So the same text always
parses the same: the cache keys on the text and answers a copy of the parse Rasa computed for it. Both guards
are checked per model, once: every node of the parse graph must be one of the components below, read with
`message_id`/`metadata` left out of the answer, and none may need the tracker; otherwise every parse runs
the graph. A component added to config.yml therefore turns the cache off until someone has checked that it
has no context and listed it here.

`KEYMEDIC_PARSE_CACHE` sets how many texts are kept (default `DEFAULT_SIZE`; `0` turns the cache off). Hits
and misses are counted in `keymedic_parse_cache_lookups_total` (docs/operating.md). The texts are those Rasa
itself stores in the tracker, after the channels' redaction (channels/screening.py); a new model is a new
processor with an empty cache.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from rasa.core.processor import MessageProcessor
from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
from rasa.graph_components.converters.nlu_message_converter import NLUMessageConverter
from rasa.graph_components.providers.domain_provider import DomainProvider
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.nlu.classifiers.regex_message_handler import RegexMessageHandler
from rasa.nlu.extractors.entity_synonyms import EntitySynonymMapper
from rasa.nlu.extractors.regex_entity_extractor import RegexEntityExtractor
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.featurizers.sparse_featurizer.lexical_syntactic_featurizer import LexicalSyntacticFeaturizer
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

from bot.observability.metrics import PARSE_CACHE_LOOKUPS
from rasa_plugins import patching
from rasa_plugins.faq_siblings import FaqSiblings
from rasa_plugins.graph_runner import execution_order
from rasa_plugins.plain_copy import plain_copy
from rasa_plugins.two_part_messages import TwoPartMessages
from rasa_plugins.typed_ratings import TypedRatings

__all__ = ["PATCHES", "DEFAULT_SIZE", "CONTEXT_FREE", "ParseCache", "cache_of", "parse_message_with_graph"]

# About 11 kB of Python objects per parse (2.3 kB as JSON: the intent ranking, the FAQ selector's ranking, the
# tokens): 1,024 texts, about 11 MB.
DEFAULT_SIZE = 1024

# Components whose output for a message depends on its text alone (and the trained model): each was read for
# any use of the tracker, the message id, the metadata or state kept between calls (Rasa 3.6.21 sources).
CONTEXT_FREE: frozenset[type] = frozenset(
    {
        NLUMessageConverter,
        WhitespaceTokenizer,
        RegexFeaturizer,
        LexicalSyntacticFeaturizer,
        CountVectorsFeaturizer,
        DIETClassifier,
        ResponseSelector,
        RegexEntityExtractor,
        EntitySynonymMapper,
        FaqSiblings,
        TwoPartMessages,
        TypedRatings,
        FallbackClassifier,
        DomainProvider,
        RegexMessageHandler,
    }
)

_ORIGINAL = MessageProcessor._parse_message_with_graph
_CACHE_ATTRIBUTE = "_keymedic_parse_cache"


def configured_size() -> int:
    """`KEYMEDIC_PARSE_CACHE` as a number of texts (a bad or negative value falls back to the default)."""
    try:
        size = int(os.environ.get("KEYMEDIC_PARSE_CACHE", "") or DEFAULT_SIZE)
    except ValueError:
        return DEFAULT_SIZE
    return size if size >= 0 else DEFAULT_SIZE


class ParseCache:
    """An LRU of parse data by text; `size` 0 keeps nothing."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._parsed: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> dict[str, Any] | None:
        found = self._parsed.get(text)
        if found is None:
            self.misses += 1
            PARSE_CACHE_LOOKUPS.labels(result="miss").inc()
            return None
        self._parsed.move_to_end(text)
        self.hits += 1
        PARSE_CACHE_LOOKUPS.labels(result="hit").inc()
        return plain_copy(found)

    def put(self, text: str, parse_data: dict[str, Any]) -> None:
        self._parsed[text] = plain_copy(parse_data)
        self._parsed.move_to_end(text)
        while len(self._parsed) > self.size:
            self._parsed.popitem(last=False)

    def __len__(self) -> int:
        return len(self._parsed)


def context_free(processor: MessageProcessor) -> bool:
    """Whether the processor's parse graph reads the text alone: only listed components, no tracker."""
    schema = processor.graph_runner._graph_schema  # type: ignore[attr-defined]
    target = processor.model_metadata.nlu_target
    plan = execution_order(schema, [target], frozenset({PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER}))
    nodes = [schema.nodes[name] for name in plan]
    return all(node.uses in CONTEXT_FREE and PLACEHOLDER_TRACKER not in node.needs.values() for node in nodes)


def cache_of(processor: MessageProcessor) -> ParseCache | None:
    """The processor's cache, made on first use; None when its pipeline has context or the size is 0."""
    if _CACHE_ATTRIBUTE not in processor.__dict__:
        size = configured_size()
        usable = size > 0 and getattr(processor, "graph_runner", None) is not None and context_free(processor)
        processor.__dict__[_CACHE_ATTRIBUTE] = ParseCache(size) if usable else None
    cache: ParseCache | None = processor.__dict__[_CACHE_ATTRIBUTE]
    return cache


def parse_message_with_graph(
    self: MessageProcessor, message: Any, tracker: Any, only_output_properties: bool = True
) -> dict[str, Any]:
    """Rasa's `MessageProcessor._parse_message_with_graph`, answered from the cache for a text seen before."""
    text = getattr(message, "text", None)
    cache = cache_of(self) if only_output_properties else None
    if cache is None or not isinstance(text, str):
        parsed: dict[str, Any] = _ORIGINAL(self, message, tracker, only_output_properties)
        return parsed
    found = cache.get(text)
    if found is not None:
        return found
    parsed = _ORIGINAL(self, message, tracker, only_output_properties)
    cache.put(text, parsed)
    return parsed


PATCHES = (
    patching.Patch(
        MessageProcessor,
        "_parse_message_with_graph",
        parse_message_with_graph,
        "0bd50a53b5c013af8458cbefe5dbcbd5c02c82a671a841b1947b3e8964e5c3d1",
    ),
)
