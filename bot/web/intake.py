"""Secure credential intake (DESIGN §5): one-time form tokens and credential submissions, framework-free.

The flow: the bot (a Rasa action) calls `issue_intake_token` for the user, conversation and wallet and sends
the user the credential form (`credential_form_payload` for the widget, `intake_form_url` as a Slack link).
The form posts the secrets straight to the web app, which calls `submit_credentials`: it checks the token,
validates the fields for the wallet's exchange, redeems the token (once) and stores the credential as a
pending, encrypted credential (`bot.store.services.store_pending_credential`). The answer is the opaque
`pc_…` reference, the only thing the chat ever sees.

Every refusal is an `IntakeError` with a stable `code`, the HTTP `status` the web app answers with, and a
message for the user. Messages name fields and limits, never what was posted. A refusal stores nothing and,
except for the token errors, leaves the token usable, so the user can correct the form and send it again.

    IntakeError
    ├── TokenError               the token cannot be used
    │   ├── TokenUnknown         404 token_unknown   not a token KeyMedic issued (or long forgotten)
    │   ├── TokenUsed            409 token_used      the form was already submitted once
    │   ├── TokenExpired         410 token_expired   older than its lifetime (10 minutes)
    │   ├── NotSignedIn          401 not_signed_in   the caller's identity could not be verified
    │   ├── WrongUser            403 wrong_user      the token belongs to another user
    │   └── WrongWallet          403 wrong_wallet    the token was issued for another wallet
    └── SubmissionInvalid        what was posted cannot be used
        ├── PayloadTooLarge      413 payload_too_large
        ├── UnsupportedMediaType 415 unsupported_media_type
        ├── MalformedBody        400 malformed_body
        ├── MissingField         422 missing_field
        ├── InvalidField         422 invalid_field
        └── UnexpectedField      422 unexpected_field
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final, NoReturn
from urllib.parse import parse_qsl, urlencode

from bot.diagnosis.model import Credentials
from bot.secret import Secret, mask
from bot.store import services
from bot.store.model import IntakeToken, utcnow
from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = [
    "INTAKE_TOKEN_TTL",
    "MAX_BODY_BYTES",
    "FORM_PATH",
    "SUBMIT_PATH",
    "UNKNOWN_TOKEN_MESSAGE",
    "IntakeError",
    "TokenError",
    "TokenUnknown",
    "TokenUsed",
    "TokenExpired",
    "NotSignedIn",
    "WrongUser",
    "WrongWallet",
    "SubmissionInvalid",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "MalformedBody",
    "MissingField",
    "InvalidField",
    "UnexpectedField",
    "FieldSpec",
    "IntakeBinding",
    "Receipt",
    "fields_for",
    "issue_intake_token",
    "inspect_intake_token",
    "redeem_intake_token",
    "parse_body",
    "validate_fields",
    "submit_credentials",
    "intake_form_url",
    "credential_form_payload",
]

logger = logging.getLogger(__name__)

# Long enough to create a key on the exchange's site and paste it; short enough that a link left in a Slack
# thread or a browser history is dead soon after.
INTAKE_TOKEN_TTL: Final = timedelta(minutes=10)
# Expired tokens are kept this long only to answer "expired" rather than "unknown", then deleted.
_FORGET_LAPSED_AFTER: Final = timedelta(days=1)
# 256 random bits: guessing a live token is hopeless, so the token errors may say precisely what is wrong.
_TOKEN_BYTES: Final = 32
_TOKEN_PREFIX: Final = "it_"
_TOKEN_PATTERN: Final = re.compile(r"^it_[A-Za-z0-9_-]{43}$")
# The largest honest submission (a Coinbase PEM key, percent-encoded) is about 1 KiB.
MAX_BODY_BYTES: Final = 16 * 1024
_MAX_FORM_FIELDS: Final = 16
_MAX_CONVERSATION_ID: Final = 255  # the column's width

FORM_PATH: Final = "/intake/form"
# The widget's channel (channels/socketio.py links `socketio` / <session id> to its verified user).
WIDGET_CHANNEL: Final = "socketio"
UNKNOWN_TOKEN_MESSAGE: Final = (
    "This form link is not valid. Ask the assistant in the chat for a new link to enter your key."
)
SUBMIT_PATH: Final = "/intake/credentials"


# -- errors --------------------------------------------------------------------------------------------------


class IntakeError(Exception):
    """A refused intake request. `str(error)` is the user-facing message; it never holds a posted value."""

    code: ClassVar[str] = "intake_error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: `{"code", "message", "field"?}`."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class TokenError(IntakeError):
    """The token cannot be used; the user needs a new form from the bot (except for `WrongWallet`)."""


class TokenUnknown(TokenError):
    code, status = "token_unknown", 404


class TokenUsed(TokenError):
    code, status = "token_used", 409


class TokenExpired(TokenError):
    code, status = "token_expired", 410


class NotSignedIn(TokenError):
    """For the widget's JWT check (`bot.web.app.Identify`): the caller's identity could not be verified."""

    code, status = "not_signed_in", 401


class WrongUser(TokenError):
    code, status = "wrong_user", 403


class WrongWallet(TokenError):
    code, status = "wrong_wallet", 403


class SubmissionInvalid(IntakeError):
    """What was posted cannot be used; the token is untouched and the form can be sent again."""


class PayloadTooLarge(SubmissionInvalid):
    code, status = "payload_too_large", 413


class UnsupportedMediaType(SubmissionInvalid):
    code, status = "unsupported_media_type", 415


class MalformedBody(SubmissionInvalid):
    code, status = "malformed_body", 400


class MissingField(SubmissionInvalid):
    code, status = "missing_field", 422


class InvalidField(SubmissionInvalid):
    code, status = "invalid_field", 422


class UnexpectedField(SubmissionInvalid):
    code, status = "unexpected_field", 422


# -- the fields of the form ----------------------------------------------------------------------------------


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


# -- tokens --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeBinding:
    """What a token is bound to: one user, one conversation, one wallet (and so one exchange)."""

    token_id: int
    user_id: int
    conversation_id: str
    wallet_id: int
    exchange: str
    expires_at: datetime


@dataclass(frozen=True)
class Receipt:
    """What a successful submission answers: the opaque reference the bot will use, never the secret."""

    reference: str
    wallet_id: int
    conversation_id: str
    api_key_masked: str
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "received",
            "reference": self.reference,
            "wallet_id": self.wallet_id,
            "api_key_masked": self.api_key_masked,
            "expires_at": self.expires_at.isoformat(),
        }


def _token_hash(token: str) -> str:
    # Only a hash is stored: whoever reads the table (a backup, a support query) cannot post a credential.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_intake_token(
    uow: AbstractUnitOfWork,
    *,
    user_id: int,
    conversation_id: str,
    wallet_id: int,
    ttl: timedelta = INTAKE_TOKEN_TTL,
    now: datetime | None = None,
) -> str:
    """A fresh one-time token for the credential form of `wallet_id`, bound to the user and conversation.

    Raises `bot.store.services.NotFound` when the wallet is not the user's, `ValueError` for a bad ttl or
    conversation id. Commits. The token is a bearer credential for one submission: send it only to the user.
    """
    if ttl <= timedelta(0):
        raise ValueError("an intake token's lifetime must be positive")
    if not conversation_id or len(conversation_id) > _MAX_CONVERSATION_ID:
        raise ValueError(f"the conversation id must be 1-{_MAX_CONVERSATION_ID} characters")
    now = now or utcnow()
    token = _TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    with uow:
        wallet = uow.wallets.get(wallet_id)
        if wallet is None or wallet.user_id != user_id:
            raise services.NotFound(f"user {user_id} has no wallet {wallet_id}")
        uow.intake_tokens.delete_lapsed(now - _FORGET_LAPSED_AFTER)
        uow.intake_tokens.add(
            IntakeToken(
                token_hash=_token_hash(token),
                user_id=user_id,
                wallet_id=wallet_id,
                conversation_id=conversation_id,
                expires_at=now + ttl,
                created_at=now,
            )
        )
        uow.commit()
    logger.info(
        "intake: token issued for user %d, wallet %d, conversation %s (valid %d s)",
        user_id,
        wallet_id,
        conversation_id,
        int(ttl.total_seconds()),
    )
    return token


def _find(uow: AbstractUnitOfWork, token: object) -> tuple[IntakeToken, str]:
    """The token's row and its wallet's exchange, inside the caller's `with uow`."""
    if token is None or token == "":
        raise MissingField(
            "The form has no token. Open the form from the link the assistant sent.", field="token"
        )
    # A malformed token is answered like an unknown one, without a database query.
    if not isinstance(token, str) or not _TOKEN_PATTERN.match(token):
        raise TokenUnknown(UNKNOWN_TOKEN_MESSAGE)
    row = uow.intake_tokens.by_hash(_token_hash(token))
    wallet = uow.wallets.get(row.wallet_id) if row is not None else None
    if row is None or wallet is None:
        raise TokenUnknown(UNKNOWN_TOKEN_MESSAGE)
    return row, wallet.exchange


def _needs_signin(uow: AbstractUnitOfWork, row: IntakeToken) -> bool:
    """Whether only the verified user may use this token: it was offered in the widget, whose user always
    has a verified JWT to send with it. A Slack user has none in their browser; their token travels only
    privately (a DM or an ephemeral message, `channels.slack_output`) and vouches for them alone."""
    return uow.users.by_channel(WIDGET_CHANNEL, row.conversation_id) is not None


def _check(
    row: IntakeToken, *, user_id: int | None, wallet_id: int | None, now: datetime, signin: bool = False
) -> None:
    # Binding first, state second: whoever holds someone else's token learns nothing about its state.
    if user_id is None and signin:
        raise NotSignedIn(
            "This form belongs to a signed-in chat. Open it from the chat where the assistant sent it."
        )
    if user_id is not None and user_id != row.user_id:
        raise WrongUser(
            "This form was opened for another user. Ask the assistant in the chat for your own link."
        )
    if wallet_id is not None and wallet_id != row.wallet_id:
        raise WrongWallet(
            "This form was made for another exchange connection. Open it again from the assistant's latest "
            "message.",
            field="wallet_id",
        )
    if row.used_at is not None:
        raise TokenUsed(
            "This form was already submitted; each link works once. If you need to enter the key again, ask "
            "the assistant in the chat for a new link."
        )
    if row.expires_at <= now:
        minutes = max(1, round((row.expires_at - row.created_at).total_seconds() / 60))
        raise TokenExpired(
            f"This form has expired (links work for {minutes} minutes). Ask the assistant in the chat for a "
            "new link; your key was not saved."
        )


def _binding(row: IntakeToken, exchange: str) -> IntakeBinding:
    assert row.id is not None
    return IntakeBinding(
        token_id=row.id,
        user_id=row.user_id,
        conversation_id=row.conversation_id,
        wallet_id=row.wallet_id,
        exchange=exchange,
        expires_at=row.expires_at,
    )


def inspect_intake_token(
    uow: AbstractUnitOfWork,
    token: object,
    *,
    user_id: int | None = None,
    wallet_id: int | None = None,
    now: datetime | None = None,
) -> IntakeBinding:
    """What a usable token is bound to, without using it up (to render the form). Raises a `TokenError`
    when it is unknown, used, expired, or bound to another user or wallet than the ones given."""
    now = now or utcnow()
    with uow:
        row, exchange = _find(uow, token)
        _check(row, user_id=user_id, wallet_id=wallet_id, now=now, signin=_needs_signin(uow, row))
        return _binding(row, exchange)


def redeem_intake_token(
    uow: AbstractUnitOfWork,
    token: object,
    *,
    user_id: int | None,
    wallet_id: int,
    now: datetime | None = None,
) -> IntakeBinding:
    """Use the token up: it must be unused, unexpired, the user's (`user_id`, or None when the token alone
    vouches for its user) and for `wallet_id`. Single use even under concurrent submissions. Commits."""
    now = now or utcnow()
    with uow:
        row, exchange = _find(uow, token)
        _check(row, user_id=user_id, wallet_id=wallet_id, now=now, signin=_needs_signin(uow, row))
        assert row.id is not None
        if not uow.intake_tokens.claim(row.id, now=now):
            # Another submission redeemed it (or it lapsed) between the read and the claim.
            uow.rollback()
            row, exchange = _find(uow, token)
            _check(row, user_id=user_id, wallet_id=wallet_id, now=now)
            raise TokenUsed("This form was already submitted; each link works once.")
        binding = _binding(row, exchange)
        uow.commit()
    return binding


def _release(uow: AbstractUnitOfWork, token_id: int, claimed_at: datetime) -> None:
    """Give a redeemed token back after its credential could not be stored, so the user can send it again."""
    try:
        with uow:
            uow.intake_tokens.release(token_id, claimed_at=claimed_at)
            uow.commit()
    except Exception as error:  # the original failure is what the caller must see
        logger.warning(
            "intake: could not release token %d after a failed store (%s)", token_id, type(error).__name__
        )


# -- what was posted -----------------------------------------------------------------------------------------


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


def _wallet_id(fields: Mapping[str, Any]) -> int:
    value = fields.get("wallet_id")
    if value is None or value == "":
        raise MissingField(
            "The form has no wallet id. Reload the form from the assistant's message.", field="wallet_id"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        number = int(value)
    else:
        raise InvalidField("The wallet id must be a whole number.", field="wallet_id")
    if number <= 0:
        raise InvalidField("The wallet id must be a whole number.", field="wallet_id")
    return number


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


# -- a submission --------------------------------------------------------------------------------------------


def submit_credentials(
    uow: AbstractUnitOfWork,
    token: object,
    *,
    user_id: int | None,
    fields: Mapping[str, Any],
    now: datetime | None = None,
) -> Receipt:
    """Store what the credential form posted and return the opaque reference for the bot.

    `fields` is the posted body (`wallet_id`, `api_key`, `api_secret`, `passphrase`, `key_version`; a `token`
    field is allowed and ignored, the token is the `token` argument). `user_id` is the caller's verified
    identity, or None while the token alone vouches for its user (before the widget's JWT check).

    Order: the token must be usable and bound to this user and wallet; then the fields must be valid for the
    wallet's exchange; only then is the token used up and the credential stored, encrypted. Any refusal
    raises an `IntakeError` and stores nothing; a failure while storing gives the token back.
    """
    now = now or utcnow()
    wallet_id = _wallet_id(fields)
    binding = inspect_intake_token(uow, token, user_id=user_id, wallet_id=wallet_id, now=now)
    credentials = validate_fields(fields, binding.exchange)
    binding = redeem_intake_token(uow, token, user_id=user_id, wallet_id=wallet_id, now=now)
    try:
        reference = services.store_pending_credential(
            uow,
            wallet_id=binding.wallet_id,
            credentials=credentials,
            conversation_id=binding.conversation_id,
            now=now,
        )
    except BaseException:
        _release(uow, binding.token_id, now)
        raise
    logger.info(
        "intake: pending credential stored for user %d, wallet %d, conversation %s",
        binding.user_id,
        binding.wallet_id,
        binding.conversation_id,
    )
    return Receipt(
        reference=reference,
        wallet_id=binding.wallet_id,
        conversation_id=binding.conversation_id,
        api_key_masked=mask(credentials.api_key),
        expires_at=now + services.PENDING_TTL,
    )


# -- what the bot sends --------------------------------------------------------------------------------------


def intake_form_url(base_url: str, token: str) -> str:
    """The one-time link to the credential form (Slack, or a widget that opens the page).

    The token is in the fragment, which a browser never sends: no proxy, access log or Referer holds it.
    The page's script posts it (`bot.web.form.render_opener`)."""
    return f"{base_url.rstrip('/')}{FORM_PATH}#{urlencode({'token': token})}"


# The custom message type the widget renders as the credential form (widget/src/keymedic-widget.js).
CREDENTIAL_FORM_TYPE = "keymedic_credential_form"


def credential_form_payload(
    base_url: str, token: str, *, wallet_id: int, exchange: str, expires_in: timedelta = INTAKE_TOKEN_TTL
) -> dict[str, Any]:
    """The credential-form payload the bot sends the widget (a custom message): what to render and where to
    post it. The widget posts `{"token", "wallet_id", <fields>}` as JSON to `submit_url` and sends the bot
    only the `reference` of the answer."""
    return {
        "type": CREDENTIAL_FORM_TYPE,
        "form_url": intake_form_url(base_url, token),
        "submit_url": f"{base_url.rstrip('/')}{SUBMIT_PATH}",
        "token": token,
        "wallet_id": wallet_id,
        "exchange": exchange,
        "expires_in_s": int(expires_in.total_seconds()),
        "fields": [spec.to_dict() for spec in fields_for(exchange)],
    }
