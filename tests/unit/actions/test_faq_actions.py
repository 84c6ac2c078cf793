"""The FAQ actions say bot/knowledge's answer for the right exchange, and the fallback is never a dead end."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import ActionAnswerFaq, ActionKnowledgeFallback
from bot.assistant import WalletView
from bot.knowledge import answer
from tests.unit.actions.fakes import FakeDesk


def ask(
    text: str,
    intent: str,
    *,
    key: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    ranking: list[str] | None = None,
) -> Tracker:
    message: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
        "intent_ranking": [{"name": name, "confidence": 0.1} for name in ranking or [intent]],
    }
    if key is not None:
        message["response_selector"] = {
            "default": {"response": {"intent_response_key": key, "confidence": 0.8}, "ranking": []}
        }
    return Tracker("demo", slots or {}, message, [], False, None, {}, None)


def said(dispatcher: CollectingDispatcher) -> list[str]:
    return [str(m.get("text") or "") for m in dispatcher.messages]


def kucoin(text: str) -> list[dict[str, Any]]:
    start = text.lower().index("kucoin")
    return [{"entity": "exchange", "value": "kucoin", "start": start, "end": start + 6}]


WALLETS = [WalletView(3, "kraken", "default", "****abcd", None)]


async def test_a_passphrase_question_naming_kucoin_gets_kucoins_answer() -> None:
    text = "do I need a passphrase for kucoin?"
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerFaq(FakeDesk(wallet_list=WALLETS)).run(
        dispatcher, ask(text, "ask_passphrase", entities=kucoin(text)), {}
    )
    assert said(dispatcher) == [answer("passphrase", "kucoin")] and events == []


async def test_without_an_exchange_named_the_conversations_exchange_answers() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(FakeDesk()).run(
        dispatcher, ask("which permissions?", "ask_permissions", slots={"exchange": "gemini"}), {}
    )
    assert said(dispatcher) == [answer("permissions", "gemini")]


async def test_else_the_users_only_wallet_decides_the_exchange() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(FakeDesk(wallet_list=WALLETS)).run(
        dispatcher, ask("do i need a passphrase", "ask_passphrase"), {}
    )
    assert said(dispatcher) == [answer("passphrase", "kraken")]


async def test_with_two_wallets_and_no_exchange_named_the_general_answer_is_given() -> None:
    wallets = [*WALLETS, WalletView(4, "okx", "default", None, None)]
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(FakeDesk(wallet_list=wallets)).run(
        dispatcher, ask("do i need a passphrase", "ask_passphrase"), {}
    )
    assert said(dispatcher) == [answer("passphrase")]


async def test_a_retrieval_question_gets_its_topics_answer_and_updating_keeps_edits() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(FakeDesk()).run(
        dispatcher, ask("does updating keep my edits", "faq", key="faq/update_keeps_edits"), {}
    )
    assert said(dispatcher) == [answer("update_keeps_edits")]
    dispatcher = CollectingDispatcher()
    await ActionAnswerFaq(FakeDesk()).run(
        dispatcher, ask("can i close the tab", "faq_sync", key="faq_sync/tab_open"), {}
    )
    assert said(dispatcher) == [answer("tab_open")]


async def test_a_close_passage_is_the_answer_and_a_person_is_offered() -> None:
    dispatcher = CollectingDispatcher()
    await ActionKnowledgeFallback(FakeDesk()).run(
        dispatcher, ask("stray space copied with my secret", "nlu_fallback"), {}
    )
    assert said(dispatcher)[0] == answer("stray_space")
    assert dispatcher.messages[-1]["buttons"] == [{"title": "Talk to a person", "payload": "/request_human"}]


async def test_nothing_close_offers_likely_topics_and_a_person_never_a_dead_end() -> None:
    dispatcher = CollectingDispatcher()
    tracker = ask("zxqv blorp", "nlu_fallback", ranking=["nlu_fallback", "sync_stopped", "ask_passphrase"])
    await ActionKnowledgeFallback(FakeDesk()).run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    buttons = message["buttons"]
    assert "Did you mean one of these?" in message["text"]
    assert 3 <= len(buttons) <= 4 and buttons[-1]["payload"] == "/request_human"
    assert {"title": "My wallet stopped syncing", "payload": "/sync_stopped"} in buttons
