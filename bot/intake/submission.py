"""A credential submission: the form's post, checked and stored as a pending, encrypted credential.

`submit_credentials` checks the token, validates the fields for the wallet's exchange, redeems the token
(once) and stores the credential (`bot.store.services.store_pending_credential`). The answer is the opaque
`pc_…` reference, the only thing the chat ever sees.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.intake.errors import InvalidField, MissingField
from bot.intake.fields import validate_fields
from bot.intake.tokens import inspect_intake_token, redeem_intake_token, release_intake_token
from bot.secret import mask
from bot.store import services
from bot.store.model import utcnow
from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = ["Receipt", "submit_credentials"]

logger = logging.getLogger(__name__)


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
        release_intake_token(uow, binding.token_id, now)
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
