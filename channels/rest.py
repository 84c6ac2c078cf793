"""`RedactingRestInput`: Rasa's REST channel with secrets taken out of every message (DESIGN §5, §6).

For local runs and tests only (`credentials.production.yml` leaves it out). Its sender id names the KeyMedic
user, as with Rasa's own REST channel, so the channel keeps the name "rest" (`bot.demo.REST_CHANNEL`).

The text is redacted where Rasa's handler reads it (`_extract_message`), before the `UserMessage` exists, so
even Rasa's own error log of a failed request ("rest.message.received.failure", which quotes the text) only
sees the redacted text. When something was taken out, the user's first reply is `screening.NOTICE`.

A message over the size limit (`screening.refusal`) is neither redacted nor handed to Rasa: the reply is
`screening.TOO_LONG` alone (issue 19). A turn that fails (the tracker store could not save it) answers
`failure.NOT_SAVED` alone, with `custom: {"error": "not_saved"}`, instead of the answers Rasa collected and
then forgot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint
from sanic.request import Request

from channels.failure import NOT_SAVED, NOT_SAVED_CODE, log_failed_turn
from channels.screening import (
    NOTICE,
    REDACTED_METADATA_KEY,
    REFUSED_METADATA_KEY,
    Screened,
    refusal,
    screen,
)

__all__ = ["RedactingRestInput"]


class RedactingRestInput(RestInput):
    """Rasa's REST channel; every message and its metadata are redacted before Rasa sees them."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def _screened(self, request: Request) -> Screened:
        # Rasa's handler asks for the text and the metadata separately; screen the request once.
        cached = getattr(request.ctx, "keymedic_screened", None)
        if isinstance(cached, Screened):
            return cached
        body = request.json if isinstance(request.json, dict) else {}
        refused = refusal(body.get("message"), body.get("metadata"))
        if refused is not None:
            # Rasa's handler still builds a message; the wrapper below answers it instead of Rasa.
            screened = Screened("", {REFUSED_METADATA_KEY: refused}, ())
        else:
            screened = screen(body.get("message"), body.get("metadata"))
        request.ctx.keymedic_screened = screened
        return screened

    def _extract_message(self, req: Request) -> str | None:
        text = self._screened(req).text
        return text if isinstance(text, str) else None

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        return self._screened(request).metadata

    def _extract_input_channel(self, req: Request) -> str:
        # Rasa lets a REST client name any channel; the channel is what SupportDesk looks users up by, so a
        # message that came in here says "rest" (DESIGN §6: the sender id names the user on this channel).
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def tell_then_handle(message: UserMessage) -> None:
            refused = (message.metadata or {}).get(REFUSED_METADATA_KEY)
            if refused:
                if message.output_channel is not None:
                    await message.output_channel.send_text_message(message.sender_id, str(refused))
                return
            output = message.output_channel
            if (message.metadata or {}).get(REDACTED_METADATA_KEY) and output is not None:
                await output.send_text_message(message.sender_id, NOTICE)
            # What was said before the turn (the revoke notice) stands whatever happens to the turn.
            kept = len(output.messages) if isinstance(output, CollectingOutputChannel) else 0
            try:
                await on_new_message(message)
            except Exception as error:
                log_failed_turn(self.name(), error)
                failed = CollectingOutputChannel._message(
                    message.sender_id, text=NOT_SAVED, custom={"error": NOT_SAVED_CODE}
                )
                if isinstance(output, CollectingOutputChannel) and isinstance(output.messages, list):
                    # The answers Rasa collected belong to a turn that was never stored: not shown.
                    output.messages[kept:] = [failed]
                elif output is not None:
                    await output.send_text_message(message.sender_id, NOT_SAVED)

        blueprint: Blueprint = super().blueprint(tell_then_handle)
        return blueprint
