"""The credential form's fields: which inputs an exchange's key needs, and reading what was posted.

`parse_body` turns a JSON or form-encoded body into fields; `validate_fields` turns fields into
`Credentials` for a wallet's exchange. Both raise a `SubmissionInvalid` naming the problem, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn
from urllib.parse import parse_qsl

from bot.intake.errors import (
    InvalidField,
    MalformedBody,
    MissingField,
    PayloadTooLarge,
    UnexpectedField,
    UnsupportedMediaType,
)
from bot.secret import Secret
from bot.types.credentials import Credentials

__all__ = ["MAX_BODY_BYTES", "FieldSpec", "fields_for", "parse_body", "validate_fields"]

# The largest honest submission (a Coinbase PEM key, percent-encoded) is about 1 KiB.
MAX_BODY_BYTES: Final = 16 * 1024
_MAX_FORM_FIELDS: Final = 16


@dataclass(frozen=True)
class FieldSpec:
    """One input of the credential form. `secret` fields are password inputs and are never shown back."""

    name: str
    label: str
    secret: bool
    required: bool
    max_length: int
    hint: str = ""
    choices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "secret": self.secret,
            "required": self.required,
            "max_length": self.max_length,
            "hint": self.hint,
            "choices": list(self.choices),
        }


_API_KEY = FieldSpec("api_key", "API key", secret=False, required=True, max_length=512)
# A Coinbase CDP secret is a PEM EC key of about 230 characters; 4096 leaves room without inviting abuse.
_API_SECRET = FieldSpec("api_secret", "API secret", secret=True, required=True, max_length=4096)
_PASSPHRASE = FieldSpec(
    "passphrase",
    "API passphrase",
    secret=True,
    required=True,
    max_length=256,
    hint="The passphrase you chose when you created this key (not your account password).",
)
_KEY_VERSION = FieldSpec(
    "key_version",
    "API key version",
    secret=False,
    required=False,
    max_length=1,
    hint="Shown next to the key on KuCoin's API Management page. Leave empty if you are not sure.",
    choices=("2", "3", "1"),
)
# Exchanges whose keys come with a passphrase, and KuCoin's key version (reference/exchanges.md §0.6: "KuCoin
# needs passphrase + key version (2 or 3). OKX needs passphrase"). A test keeps this in step with the live
# clients' `needs_passphrase`.
_PASSPHRASE_EXCHANGES: Final = frozenset({"kucoin", "okx"})
_KEY_VERSION_EXCHANGES: Final = frozenset({"kucoin"})
# Fields a submission may carry besides the credential fields.
_ENVELOPE_FIELDS: Final = ("token", "wallet_id")
_ALL_FIELDS: Final = frozenset({*_ENVELOPE_FIELDS, "api_key", "api_secret", "passphrase", "key_version"})


def fields_for(exchange: str) -> tuple[FieldSpec, ...]:
    """The credential form's inputs for a wallet on `exchange`, in display order."""
    fields = [_API_KEY, _API_SECRET]
    if exchange in _PASSPHRASE_EXCHANGES:
        fields.append(_PASSPHRASE)
    if exchange in _KEY_VERSION_EXCHANGES:
        fields.append(_KEY_VERSION)
    return tuple(fields)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedBody(_named("appears twice in the body", key), field=_known(key))
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    raise MalformedBody(f"The body is not valid JSON ({name} is not a JSON value).")


def _known(name: str) -> str | None:
    return name if name in _ALL_FIELDS else None


def _named(problem: str, name: str) -> str:
    # Field names come from the client too; only KeyMedic's own names are repeated back.
    return f"The field {name} {problem}." if name in _ALL_FIELDS else f"A field {problem}."


def parse_body(content_type: str, body: bytes, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The posted fields of a JSON object (`application/json`) or an HTML form
    (`application/x-www-form-urlencoded`), as a dict. Raises a `SubmissionInvalid`, never quoting the body."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"The request is larger than {max_bytes} bytes; a key is much shorter.")
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/json":
        return _parse_json(body)
    if media_type == "application/x-www-form-urlencoded":
        return _parse_form(body)
    raise UnsupportedMediaType("Send the form as application/json or application/x-www-form-urlencoded.")


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("The body is not UTF-8 text.") from None
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        # The decoder's own message quotes no input, but its position is all the caller needs.
        raise MalformedBody(
            f"The body is not valid JSON (line {error.lineno}, column {error.colno})."
        ) from None
    except RecursionError:
        raise MalformedBody("The body is not valid JSON (nested too deeply).") from None
    if not isinstance(data, dict):
        raise MalformedBody('The body must be a JSON object of fields, like {"token": ..., "api_key": ...}.')
    return data


def _parse_form(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("ascii")  # a form body is percent-encoded ASCII
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            encoding="utf-8",
            errors="strict",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError:  # also UnicodeDecodeError: bad percent-encoding, not UTF-8, too many fields
        raise MalformedBody(
            "The form data is not valid (application/x-www-form-urlencoded, UTF-8)."
        ) from None
    return _reject_duplicates(pairs)


def _text(fields: Mapping[str, Any], spec: FieldSpec) -> str | None:
    value = fields.get(spec.name)
    if spec.name == "key_version" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(f"The {spec.label} must be text.", field=spec.name)
    # Only emptiness is judged here; stray spaces, quotes and line breaks are the live test's format check,
    # which tells the user exactly what to fix (`bot.diagnosis.format`).
    if not value.strip():
        return None
    if len(value) > spec.max_length:
        raise InvalidField(
            f"The {spec.label} is longer than {spec.max_length} characters; check that you pasted only the "
            f"{spec.label}.",
            field=spec.name,
        )
    if spec.choices and value not in spec.choices:
        raise InvalidField(f"The {spec.label} must be one of {', '.join(spec.choices)}.", field=spec.name)
    return value


def validate_fields(fields: Mapping[str, Any], exchange: str) -> Credentials:
    """The credentials in a submission for a wallet on `exchange`. Raises a `SubmissionInvalid` naming the
    first problem (in form order); messages name fields and limits, never values."""
    unknown = [name for name in fields if name not in _ALL_FIELDS]
    if unknown:
        accepted = ", ".join(sorted(_ALL_FIELDS))
        raise UnexpectedField(f"The form sent fields KeyMedic does not accept (accepted: {accepted}).")
    specs = fields_for(exchange)
    names = {spec.name for spec in specs}
    for name in ("passphrase", "key_version"):
        if name not in names and fields.get(name) not in (None, ""):
            raise UnexpectedField(f"This exchange's keys have no {name}; leave it out.", field=name)
    values: dict[str, str | None] = {}
    for spec in specs:
        values[spec.name] = _text(fields, spec)
        if values[spec.name] is None and spec.required:
            raise MissingField(f"The {spec.label} is missing.", field=spec.name)
    api_key, api_secret, passphrase = values["api_key"], values["api_secret"], values.get("passphrase")
    assert api_key is not None and api_secret is not None
    return Credentials(
        api_key=api_key,
        api_secret=Secret(api_secret),
        passphrase=Secret(passphrase) if passphrase is not None else None,
        key_version=values.get("key_version"),
    )
