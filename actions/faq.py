"""The knowledge base in the conversation: FAQ answers for the user's exchange, and the search before the
fallback (issue 14). Thin: the answers, the search and the suggestions are bot/knowledge's."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import DeskAction, channel_of, exchange_of
from bot.knowledge import answer, depends_on_exchange, is_retrieval_intent, topic_for_intent
from bot.knowledge.fallback import question_for, suggestions
from bot.knowledge.search import confident, search

_PERSON = {"title": "Talk to a person", "payload": "/request_human"}


class ActionAnswerFaq(DeskAction):
    """Answers the question the NLU recognised (an FAQ topic such as `faq/<topic>`, or a contract question as
    `ask_passphrase`), for the exchange this message names, else the conversation's, else the user's only
    wallet's."""

    def name(self) -> str:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message: dict[str, Any] = tracker.latest_message or {}
        intent = str((message.get("intent") or {}).get("name") or "")
        key = question_for(message) if is_retrieval_intent(intent) else intent
        topic = topic_for_intent(key) if key else None
        if topic is None:
            # A retrieval key the knowledge base doesn't know (a model older than faq.yml): search instead.
            await ActionKnowledgeFallback(self._desk).run(dispatcher, tracker, domain)
            return []
        exchange = exchange_of(tracker)
        if exchange is None and depends_on_exchange(topic):
            exchange = await self._only_wallet_exchange(tracker)
        dispatcher.utter_message(text=answer(topic, exchange))
        return []

    async def _only_wallet_exchange(self, tracker: Tracker) -> str | None:
        wallets = await self.desk.wallets(channel_of(tracker), tracker.sender_id)
        exchanges = {wallet.exchange for wallet in wallets}
        return exchanges.pop() if len(exchanges) == 1 else None


class ActionKnowledgeFallback(DeskAction):
    """No intent was confident: answer from the knowledge text when a passage is close enough (and clearly
    ahead of the next), then offer a person; otherwise offer the likeliest topics and a person. Never a dead
    end."""

    def name(self) -> str:
        return "action_knowledge_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message: dict[str, Any] = tracker.latest_message or {}
        text = str(message.get("text") or "")
        exchange = exchange_of(tracker)
        hits = search(text, limit=3, exchange=exchange) if text.strip() else []
        hit = confident(hits)
        if hit is not None:
            best = hit.passage
            reply = answer(best.topic, exchange or best.exchange) if best.topic is not None else best.text
            dispatcher.utter_message(text=reply)
            dispatcher.utter_message(
                text="If that doesn't answer your question, someone from our support team can help.",
                buttons=[_PERSON],
            )
            return []
        buttons = [{"title": s.title, "payload": s.payload} for s in suggestions(message, hits)]
        dispatcher.utter_message(
            text=(
                "Sorry, I didn't follow that. Did you mean one of these? If not, put it another way, or "
                "talk to a person from our support team."
            ),
            buttons=[*buttons, _PERSON],
        )
        return []
