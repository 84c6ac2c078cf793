"""One-time intake tokens (DESIGN §5): a token is good for one credential submission, by one user, for one
wallet, for 10 minutes. Only its SHA-256 is stored.

The bot issues one (`issue_intake_token`) and sends the form; the web app inspects it to render the form and
redeems it, once, when the form is posted (`bot.intake.submission`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from bot.intake.errors import (
    MissingField,
    NotSignedIn,
    TokenExpired,
    TokenUnknown,
    TokenUsed,
    WrongUser,
    WrongWallet,
)
from bot.store import services
from bot.store.model import IntakeToken, utcnow
from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = [
    "INTAKE_TOKEN_TTL",
    "UNKNOWN_TOKEN_MESSAGE",
    "WIDGET_CHANNEL",
    "IntakeBinding",
    "issue_intake_token",
    "inspect_intake_token",
    "redeem_intake_token",
    "release_intake_token",
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
_MAX_CONVERSATION_ID: Final = 255  # the column's width
# The widget's channel (channels/socketio.py links `socketio` / <session id> to its verified user).
WIDGET_CHANNEL: Final = "socketio"
UNKNOWN_TOKEN_MESSAGE: Final = (
    "This form link is not valid. Ask the assistant in the chat for a new link to enter your key."
)


@dataclass(frozen=True)
class IntakeBinding:
    """What a token is bound to: one user, one conversation, one wallet (and so one exchange)."""

    token_id: int
    user_id: int
    conversation_id: str
    wallet_id: int
    exchange: str
    expires_at: datetime


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


def release_intake_token(uow: AbstractUnitOfWork, token_id: int, claimed_at: datetime) -> None:
    """Give a redeemed token back after its credential could not be stored, so the user can send it again."""
    try:
        with uow:
            uow.intake_tokens.release(token_id, claimed_at=claimed_at)
            uow.commit()
    except Exception as error:  # the original failure is what the caller must see
        logger.warning(
            "intake: could not release token %d after a failed store (%s)", token_id, type(error).__name__
        )
