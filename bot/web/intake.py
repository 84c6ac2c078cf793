"""The intake's refusals as HTTP answers: `bot.intake` speaks of tokens and fields, the web app of statuses.

    TokenUnknown         404    PayloadTooLarge       413
    TokenUsed            409    UnsupportedMediaType  415
    TokenExpired         410    MalformedBody         400
    NotSignedIn          401    MissingField          422
    WrongUser            403    InvalidField          422
    WrongWallet          403    UnexpectedField       422

The routes themselves are in `bot.web.app`; the JSON error body is `{"error": {"code", "message", "field"?}}`.
"""

from __future__ import annotations

from typing import Final

from bot import intake

__all__ = ["STATUS", "InternalError", "status_of"]


class InternalError(intake.IntakeError):
    """The web app's own failure while storing (the database is down): the user may simply try again."""

    code = "internal_error"


STATUS: Final[dict[type[intake.IntakeError], int]] = {
    InternalError: 500,
    intake.TokenUnknown: 404,
    intake.TokenUsed: 409,
    intake.TokenExpired: 410,
    intake.NotSignedIn: 401,
    intake.WrongUser: 403,
    intake.WrongWallet: 403,
    intake.PayloadTooLarge: 413,
    intake.UnsupportedMediaType: 415,
    intake.MalformedBody: 400,
    intake.MissingField: 422,
    intake.InvalidField: 422,
    intake.UnexpectedField: 422,
}


def status_of(error: intake.IntakeError) -> int:
    """The status of the most specific class of `error` that has one; 400 for any other refusal."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400
