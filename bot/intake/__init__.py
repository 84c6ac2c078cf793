"""Secure credential intake (DESIGN §5), framework-free: one-time form tokens, the form's fields, and the
submission that stores a pending, encrypted credential. The web app's routes are in `bot.web.app`, which
maps these refusals to HTTP statuses (`bot.web.intake`); the bot issues tokens through `bot.assistant.desk`.

The flow: the bot calls `issue_intake_token` for the user, conversation and wallet and sends the user the
credential form (`credential_form_payload` for the widget, `intake_form_url` as a Slack link). The form posts
the secrets straight to the web app, which calls `submit_credentials`: it checks the token, validates the
fields for the wallet's exchange, redeems the token (once) and stores the credential. The answer is the opaque
`pc_…` reference, the only thing the chat ever sees.

- `errors`: why a request is refused (`IntakeError` and its subclasses, each with a stable `code`);
- `tokens`: issuing, inspecting and redeeming the one-time tokens;
- `fields`: which inputs a key needs, and reading a posted body into `Credentials`;
- `submission`: `submit_credentials` and its `Receipt`;
- `links`: the link and the widget payload the bot sends.
"""

from __future__ import annotations

from bot.intake.errors import (
    IntakeError,
    InvalidField,
    MalformedBody,
    MissingField,
    NotSignedIn,
    PayloadTooLarge,
    SubmissionInvalid,
    TokenError,
    TokenExpired,
    TokenUnknown,
    TokenUsed,
    UnexpectedField,
    UnsupportedMediaType,
    WrongUser,
    WrongWallet,
)
from bot.intake.fields import MAX_BODY_BYTES, FieldSpec, fields_for, parse_body, validate_fields
from bot.intake.links import (
    CREDENTIAL_FORM_TYPE,
    FORM_PATH,
    SUBMIT_PATH,
    credential_form_payload,
    intake_form_url,
)
from bot.intake.submission import Receipt, submit_credentials
from bot.intake.tokens import (
    INTAKE_TOKEN_TTL,
    UNKNOWN_TOKEN_MESSAGE,
    WIDGET_CHANNEL,
    IntakeBinding,
    inspect_intake_token,
    issue_intake_token,
    redeem_intake_token,
)

__all__ = [
    "CREDENTIAL_FORM_TYPE",
    "FORM_PATH",
    "INTAKE_TOKEN_TTL",
    "MAX_BODY_BYTES",
    "SUBMIT_PATH",
    "UNKNOWN_TOKEN_MESSAGE",
    "WIDGET_CHANNEL",
    "FieldSpec",
    "IntakeBinding",
    "IntakeError",
    "InvalidField",
    "MalformedBody",
    "MissingField",
    "NotSignedIn",
    "PayloadTooLarge",
    "Receipt",
    "SubmissionInvalid",
    "TokenError",
    "TokenExpired",
    "TokenUnknown",
    "TokenUsed",
    "UnexpectedField",
    "UnsupportedMediaType",
    "WrongUser",
    "WrongWallet",
    "credential_form_payload",
    "fields_for",
    "inspect_intake_token",
    "intake_form_url",
    "issue_intake_token",
    "parse_body",
    "redeem_intake_token",
    "submit_credentials",
    "validate_fields",
]
