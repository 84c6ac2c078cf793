"""Why an intake request is refused: one exception per reason, each with a stable `code`.

The web layer maps them to HTTP statuses (`bot.web.intake.STATUS`); here they are only the domain's words.
Messages name fields and limits, never what was posted. A refusal stores nothing and, except for the token
errors, leaves the token usable, so the user can correct the form and send it again.

    IntakeError
    ├── TokenError               the token cannot be used
    │   ├── TokenUnknown         token_unknown   not a token KeyMedic issued (or long forgotten)
    │   ├── TokenUsed            token_used      the form was already submitted once
    │   ├── TokenExpired         token_expired   older than its lifetime (10 minutes)
    │   ├── NotSignedIn          not_signed_in   the caller's identity could not be verified
    │   ├── WrongUser            wrong_user      the token belongs to another user
    │   └── WrongWallet          wrong_wallet    the token was issued for another wallet
    └── SubmissionInvalid        what was posted cannot be used
        ├── PayloadTooLarge      payload_too_large
        ├── UnsupportedMediaType unsupported_media_type
        ├── MalformedBody        malformed_body
        ├── MissingField         missing_field
        ├── InvalidField         invalid_field
        └── UnexpectedField      unexpected_field
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
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
]


class IntakeError(Exception):
    """A refused intake request. `str(error)` is the user-facing message; it never holds a posted value."""

    code: ClassVar[str] = "intake_error"

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
    code = "token_unknown"


class TokenUsed(TokenError):
    code = "token_used"


class TokenExpired(TokenError):
    code = "token_expired"


class NotSignedIn(TokenError):
    """For the widget's JWT check (`bot.web.app`): the caller's identity could not be verified."""

    code = "not_signed_in"


class WrongUser(TokenError):
    code = "wrong_user"


class WrongWallet(TokenError):
    code = "wrong_wallet"


class SubmissionInvalid(IntakeError):
    """What was posted cannot be used; the token is untouched and the form can be sent again."""


class PayloadTooLarge(SubmissionInvalid):
    code = "payload_too_large"


class UnsupportedMediaType(SubmissionInvalid):
    code = "unsupported_media_type"


class MalformedBody(SubmissionInvalid):
    code = "malformed_body"


class MissingField(SubmissionInvalid):
    code = "missing_field"


class InvalidField(SubmissionInvalid):
    code = "invalid_field"


class UnexpectedField(SubmissionInvalid):
    code = "unexpected_field"
