"""A message's combined features built once per parse, not once per classifier.

Rasa 3.6's DIETClassifier and ResponseSelector each turn the message's features into their model data with
`Message.get_all_features(attribute, featurizers)`, which picks the message's sparse and dense features and
stacks each kind into one (`scipy.sparse.hstack` for the sparse ones). KeyMedic's pipeline runs both
classifiers on every text it has not parsed before, with the same featurizers (all of them), so the same
stacking ran twice: under `make bench`'s load about 5 % of the Rasa server's busy time (py-spy; docs/bench.md,
"Issue 14, round 2").

`PATCHES` (installed by `rasa_plugins.startup.install`) puts `all_features` below in its place: it keeps the
last answer on the message, for its arguments, while the message's features are the ones it was built from
(their count and the last one's identity: Rasa only appends features, `Message.add_features`), and hands out
a new list of the same `Features` objects, which both classifiers only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message

from rasa_plugins import patching

__all__ = ["PATCHES", "all_features"]

_ORIGINAL = Message.get_all_features
_MEMO_ATTRIBUTE = "_keymedic_all_features"


@dataclass(frozen=True)
class _Memo:
    arguments: tuple[str, tuple[str, ...] | None]
    feature_count: int
    last_feature: Any
    features: list[Features]


def all_features(self: Message, attribute: str, featurizers: list[str] | None = None) -> list[Features]:
    """Rasa's `Message.get_all_features`, built once while the message's features stay the same."""
    arguments = (attribute, tuple(featurizers) if featurizers is not None else None)
    current = self.features
    last = current[-1] if current else None
    memo: _Memo | None = self.__dict__.get(_MEMO_ATTRIBUTE)
    if (
        memo is None
        or memo.arguments != arguments
        or memo.feature_count != len(current)
        or memo.last_feature is not last
    ):
        memo = _Memo(arguments, len(current), last, _ORIGINAL(self, attribute, featurizers))
        self.__dict__[_MEMO_ATTRIBUTE] = memo
    return list(memo.features)


PATCHES = (
    patching.Patch(
        Message,
        "get_all_features",
        all_features,
        "54fd4fd1efcb192f2ff37ac88c70a50814aa408924c1ffee1697a1bb4e7e1c89",
    ),
)
