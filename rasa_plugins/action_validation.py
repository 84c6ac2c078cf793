"""Validate the action server's answers with a validator built once, not once per answer.

Rasa 3.6 checks every answer of the action server (`RemoteAction._validate_action_result`,
rasa/core/actions/action.py) with `jsonschema.validate(result, schema)`. That function first validates the
*schema itself* against JSON Schema's 2020-12 meta-schema (`check_schema`), then builds a fresh validator —
and Rasa's schema (every event type) is static. Profiled in the Rasa server of a `make bench` run
(cProfile, 60 scripted turns, 120 action answers): `check_schema` was 6.4 s of the server's 9.6 s of
request handling, validating the instances themselves a few hundredths of a second. So this module checks
the schema once and keeps the validator; every answer is still validated against the same schema, with the
same error (and Rasa's message suffix) when it does not conform.

`PATCHES` replaces the method on Rasa's class in the Rasa server's process (there is no configuration hook
for it), installed by `rasa_plugins.startup.install`, which refuses a Rasa whose method it does not know.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema.exceptions import best_match  # type: ignore[import-untyped]
from jsonschema.validators import validator_for  # type: ignore[import-untyped]
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

from rasa_plugins import patching

__all__ = ["PATCHES", "prepare", "validate_action_result"]


@lru_cache(maxsize=1)
def _validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)  # once per process, as jsonschema.validate would do on every call
    return cls(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """Rasa's `_validate_action_result` with a cached validator: True, or raises `ValidationError`."""
    error = best_match(_validator().iter_errors(result))
    if error is None:
        return True
    # The same message Rasa adds (rasa/core/actions/action.py, Rasa 3.6).
    error.message += (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


def prepare() -> None:
    """Build the validator now: fail at start-up, not on the first answer, if the schema were ever invalid."""
    _validator()


PATCHES = (
    patching.Patch(
        RemoteAction,
        "_validate_action_result",
        validate_action_result,
        "f8cdb4be6812396167ced74161b2ccd65c5ea676ad86d7d359d8c322d9d8dc42",
    ),
)
