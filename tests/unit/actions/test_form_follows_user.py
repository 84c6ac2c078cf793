"""The key form follows the user (issue 14): another exchange named in the middle of the form switches
the form to it, a misspelt exchange resolves (or is asked about when it is only a guess), and a typed yes or
no answers "Did you mean …?". Through rasa_sdk's own `run()` with the real domain and the demo data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.key_update import ActionAskExchange
from bot.assistant import SupportDesk
from tests.unit.actions.validation import DOMAIN, demo_wallets, validate


def said_in_form(
    text: str,
    *,
    intent: str,
    before: dict[str, Any],
    candidates: dict[str, Any] | None = None,
    starting: bool = False,
    explained: str | None = None,
) -> Tracker:
    """The tracker Rasa sends the validation action after the user said `text` in the form: the slots set
    before (as events before the message), the message, then this turn's slot candidates."""
    candidates = candidates or {}
    history: Iterable[dict[str, Any]] = [
        {"event": "slot", "name": name, "value": value} for name, value in before.items()
    ]
    user = {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}, "entities": []}}
    explanation = [{"event": "action", "name": explained}] if explained else []
    activation = [{"event": "active_loop", "name": "key_update_form"}] if starting else []
    events = [*history, user, *explanation, *activation, {"event": "action", "name": "key_update_form"}]
    events += [{"event": "slot", "name": name, "value": value} for name, value in candidates.items()]
    return Tracker(
        sender_id="demo",
        slots={**before, **candidates},
        latest_message={"intent": {"name": intent}, "entities": [], "text": text},
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": "key_update_form"},
        latest_action_name="key_update_form",
    )


async def test_naming_another_wallet_with_a_correction_switches_the_form_to_it(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    before = {"exchange": "kraken", "wallet_id": wallets["kraken"], "requested_slot": "credential_ref"}
    # Rasa's entity mapping took the last name of the message, the one the user corrects away from.
    tracker = said_in_form(
        "oops, I meant my KuCoin wallet, not Kraken", intent="inform", before=before,
        candidates={"exchange": "kraken"},
    )  # fmt: skip
    slots, _ = await validate(desk, tracker)
    assert slots["exchange"] == "kucoin"
    assert slots["wallet_id"] == wallets["kucoin"]


async def test_a_misspelt_exchange_mid_form_switches_too(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    before = {"exchange": "kraken", "wallet_id": wallets["kraken"], "requested_slot": "credential_ref"}
    tracker = said_in_form("wrong wallet, it's the coinbsae one", intent="nlu_fallback", before=before)
    slots, _ = await validate(desk, tracker)
    assert slots["exchange"] == "coinbase"
    assert slots["wallet_id"] == wallets["coinbase"]


async def test_a_misspelt_exchange_answers_which_exchange(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    tracker = said_in_form("kucoinn", intent="inform", before={"requested_slot": "exchange"})
    slots, said = await validate(desk, tracker)
    assert slots["exchange"] == "kucoin"
    assert slots["wallet_id"] == wallets["kucoin"]
    assert said == []


async def test_a_misspelt_exchange_in_the_first_message_starts_the_form_on_it(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    tracker = said_in_form("my krakn key stopped working", intent="sync_stopped", before={}, starting=True)
    slots, _ = await validate(desk, tracker)
    assert slots["exchange"] == "kraken"
    assert slots["wallet_id"] == wallets["kraken"]


async def test_an_unsure_guess_is_asked_about_and_a_typed_yes_takes_it(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    guess = said_in_form("ucoin", intent="nlu_fallback", before={"requested_slot": "exchange"})
    slots, _ = await validate(desk, guess)
    assert slots["exchange"] is None
    assert slots["exchange_suggestion"] == "kucoin"

    asked = CollectingDispatcher()
    after_guess = said_in_form("ucoin", intent="inform", before={}, candidates=slots)
    await ActionAskExchange(desk).run(asked, after_guess, DOMAIN)
    assert asked.messages[0]["text"] == "Did you mean KuCoin?"
    assert [b["payload"] for b in asked.messages[0]["buttons"]] == ["/affirm", "/deny"]

    answer = said_in_form("yep", intent="affirm", before={"requested_slot": "exchange", **slots})
    slots, _ = await validate(desk, answer)
    assert slots["exchange"] == "kucoin"
    assert slots["wallet_id"] == wallets["kucoin"]
    assert slots["exchange_suggestion"] is None


async def test_a_typed_no_to_the_guess_asks_again_and_keeps_the_form_going(desk: SupportDesk) -> None:
    before = {"requested_slot": "exchange", "exchange_suggestion": "kucoin"}
    slots, _ = await validate(desk, said_in_form("nope", intent="deny", before=before))
    # Something was validated, so Rasa does not reject the form (and the "no leaves the form" rule stays out).
    assert slots == {"exchange": None, "exchange_suggestion": None}


async def test_a_question_naming_another_exchange_does_not_move_the_form(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    before = {"exchange": "kraken", "wallet_id": wallets["kraken"], "requested_slot": "credential_ref"}
    tracker = said_in_form("does kucoin need a passphrase?", intent="ask_passphrase", before=before)
    slots, _ = await validate(desk, tracker)
    assert "exchange" not in slots


async def test_naming_the_same_exchange_again_changes_nothing(desk: SupportDesk) -> None:
    wallets = await demo_wallets(desk)
    before = {"exchange": "kraken", "wallet_id": wallets["kraken"], "requested_slot": "credential_ref"}
    slots, _ = await validate(desk, said_in_form("yes it's kraken", intent="affirm", before=before))
    assert "exchange" not in slots


async def test_a_question_beside_the_trigger_is_answered_once_as_the_form_starts(desk: SupportDesk) -> None:
    text = "my wallet stopped syncing, do I need a passphrase?"
    starting = said_in_form(
        text, intent="sync_stopped", before={}, starting=True, explained="utter_explain_broken_key"
    )
    asked = CollectingDispatcher()
    await ActionAskExchange(desk).run(asked, starting, DOMAIN)
    # The knowledge base's passphrase answer (no exchange named yet: the general one), then the question.
    assert "passphrase" in asked.messages[0]["text"]
    assert asked.messages[1]["text"].startswith("Which exchange is it?")
    assert len(asked.messages) == 2

    # Asked again later in the same form (no new start): only the form's question.
    later = said_in_form(text, intent="sync_stopped", before={}, starting=False)
    again = CollectingDispatcher()
    await ActionAskExchange(desk).run(again, later, DOMAIN)
    assert [m.get("response") for m in again.messages] == [None]


async def test_a_trigger_without_a_question_gets_no_extra_answer(desk: SupportDesk) -> None:
    starting = said_in_form(
        "my kraken key stopped working",
        intent="sync_stopped",
        before={},
        starting=True,
        explained="utter_explain_broken_key",
    )
    asked = CollectingDispatcher()
    await ActionAskExchange(desk).run(asked, starting, DOMAIN)
    assert [m.get("response") for m in asked.messages] == [None]


async def test_a_guess_from_an_earlier_turn_is_not_asked_about_again(desk: SupportDesk) -> None:
    later = said_in_form(
        "my wallet stopped syncing", intent="sync_stopped", before={"exchange_suggestion": "kucoin"}
    )
    asked = CollectingDispatcher()
    await ActionAskExchange(desk).run(asked, later, DOMAIN)
    assert asked.messages[0]["text"].startswith("Which exchange is it?")


async def test_a_two_part_message_in_the_middle_of_the_form_gets_its_answer_too(desk: SupportDesk) -> None:
    # The form was already running; the trigger's rule explained again and ran the form again.
    text = "the coinbase key is invalid now, is read-only enough?"
    again = said_in_form(
        text,
        intent="invalid_key_error",
        before={"requested_slot": "exchange"},
        explained="utter_explain_broken_key",
    )
    asked = CollectingDispatcher()
    await ActionAskExchange(desk).run(asked, again, DOMAIN)
    # Coinbase's own answer: the message names the exchange.
    assert asked.messages[0]["text"].startswith("Give your Coinbase key read access only")
    assert len(asked.messages) == 2
