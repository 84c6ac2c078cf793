"""Every FAQ answer is true to reference/ and pins its key fact; answers follow the user's exchange."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.exchange_ids import EXCHANGE_IDS
from bot.knowledge import KnowledgeError, answer, depends_on_exchange, load_faq, load_guides, topic_for_intent

ROOT = Path(__file__).resolve().parents[3]


def has(text: str, *patterns: str) -> bool:
    return all(re.search(p, text, re.IGNORECASE) for p in patterns)


# -- the wrong answer, and the removal facts -----------------------------------------------------


def test_updating_the_key_keeps_history_and_edits() -> None:
    text = answer("update_keeps_edits")
    # No yes/no up front: "do I lose my edits?" and "do I keep my edits?" both get a true first sentence.
    assert text.startswith("Your edits are kept.")
    assert has(text, r"keeps everything", r"edits", r"all stay")
    assert has(text, r"removing the exchange that would delete")


def test_removal_and_re_adding_lose_the_edits() -> None:
    assert has(answer("readd_loses_edits"), r"but not\s+your manual edits", r"removal deletes those")
    assert has(answer("why_support_before_removal"), r"deletes every manual edit", r"support")


def test_manual_edits_are_the_articles_four_kinds() -> None:
    assert has(answer("manual_edits"), "category changes", "notes", "cost-basis", "added by hand")


# -- passphrases: per exchange ---------------------------------------------------------------------------


def test_a_kucoin_passphrase_is_the_one_set_when_the_key_was_made() -> None:
    text = answer("passphrase", "kucoin")
    assert has(text, r"^KuCoin keys come with a passphrase", r"set a passphrase when you create the key")
    assert has(text, r"match exactly")


def test_an_okx_passphrase_cannot_be_shown_again() -> None:
    assert has(
        answer("passphrase", "okx"), r"^OKX keys come with a passphrase", r"can't show it to you again"
    )


@pytest.mark.parametrize("exchange", ["kraken", "binance", "gemini", "bitstamp", "crypto_com", "bybit"])
def test_exchanges_without_a_passphrase_say_so_with_their_own_labels(exchange: str) -> None:
    guide = load_guides()[exchange]  # type: ignore[index]
    text = answer("passphrase", exchange)
    assert text.startswith(f"{guide.name} keys don't come with a passphrase")
    assert guide.labels.secret in text


def test_a_coinbase_cdp_key_has_no_passphrase_but_a_key_name_and_private_key() -> None:
    assert has(answer("passphrase", "coinbase"), r"no passphrase", r"organizations/", r"private key")


def test_without_an_exchange_the_passphrase_answer_names_the_article_exchange_kucoin() -> None:
    assert has(answer("passphrase"), "KuCoin", "match")


# -- permissions, IP, activation, expiry: per exchange ---------------------------------------------------


def test_permissions_name_each_exchanges_read_only_setting() -> None:
    assert has(answer("permissions", "kraken"), "Query Funds", "Query Ledger Entries", "Withdraw Funds")
    assert has(answer("permissions", "gemini"), "Auditor", "Trader")
    assert has(answer("permissions", "kucoin"), "General", "Transfer")
    assert has(answer("permissions", "coinbase"), "View", "Trade, Transfer|Trade and Transfer")
    assert has(answer("permissions"), "read access only", "withdrawal and trading permissions off")


def test_ip_restriction_stays_off_with_the_exchanges_own_setting_name() -> None:
    assert has(answer("ip_restriction", "binance"), "IP access restriction", "withdrawals")
    assert has(answer("ip_restriction", "kraken"), "IP allowlist", "fixed IP")


def test_bitstamp_activation_is_the_email_link() -> None:
    assert has(answer("activation", "bitstamp"), "emails you an activation link")
    assert has(answer("activation", "kraken"), "email or 2FA")


def test_okx_keys_only_expire_when_they_can_trade_or_withdraw_without_ips() -> None:
    assert has(answer("key_expiry", "okx"), "14 days", "trade or withdraw", "read-only key isn't affected")
    assert has(answer("key_expiry", "kraken"), "expiry date", "empty")
    assert has(answer("key_expiry", "coinbase"), "February 2025", "CDP")


def test_kraken_keys_get_no_two_factor_code_of_their_own() -> None:
    assert has(answer("key_2fa", "kraken"), "^Leave it off", "can't type it")


def test_the_empty_account_answer_names_kraken_and_keeps_its_query_window_advice() -> None:
    assert has(answer("activity", "kraken"), "Kraken", "query start and end dates blank")


# -- the product's own facts -------------------------------------------------------------------------------


def test_the_update_option_is_where_the_article_says() -> None:
    assert has(answer("where_update_option"), r"Wallets page", r"\[\.\.\.\] icon", r"Update API Key")


def test_update_the_existing_connection_rather_than_adding_a_second() -> None:
    assert has(answer("update_not_add"), r"existing connection", r"rather than adding", r"one place")


def test_a_new_exchange_is_added_from_the_add_wallet_page() -> None:
    assert has(answer("not_connected_yet"), "Add wallet page")


def test_old_keys_usually_cannot_be_reused() -> None:
    assert has(answer("old_key_reuse"), r"^Usually not", r"new key")


def test_the_resync_runs_in_the_background_so_the_tab_can_close() -> None:
    assert has(answer("tab_open"), r"don't need to keep it open", "background", "close the tab")
    assert has(answer("resync"), "background", "keeps your edits", "nothing twice")


def test_a_resync_never_duplicates_and_a_failed_sync_changes_nothing() -> None:
    assert has(answer("no_duplicates"), "doesn't duplicate anything", "transaction id")
    assert has(answer("failed_sync_safe"), "changes nothing")


def test_a_read_only_key_cannot_move_funds_and_is_entered_in_the_secure_form() -> None:
    assert has(answer("safe_to_share"), "read-only", "can't trade or withdraw", "secure form", "encrypted")
    assert has(answer("safe_to_share"), "masked", "login password")
    assert has(answer("read_only_safe"), "can only look", "withdraw")


def test_key_secret_and_password_are_three_different_things() -> None:
    assert has(answer("key_vs_secret"), "public half", "private half", "None of them is your exchange login")


def test_a_stray_space_breaks_the_secret_and_the_format_check_catches_it() -> None:
    assert has(answer("stray_space"), "space", "fail", "no extra spaces", "format")
    assert has(answer("stray_space", "kraken"), "ends in ==")


def test_a_secret_pasted_in_chat_is_hidden_and_must_be_revoked() -> None:
    assert has(answer("secret_in_chat"), "hidden before it's stored", "revoke it")


def test_a_key_is_saved_only_after_it_passes_and_the_old_one_is_kept_until_a_sync() -> None:
    assert has(answer("test_before_save"), "only a key that passes is saved")
    assert has(answer("old_credential_kept"), "until the new one has synced once")


def test_an_unreachable_exchange_says_nothing_about_the_key() -> None:
    assert has(answer("exchange_unreachable"), "says nothing about\\s+your key", "nothing was changed")


def test_repeated_failures_lock_a_kraken_key_out() -> None:
    assert has(answer("why_not_retry"), "Kraken", "locks a key out")


def test_live_tests_list_exactly_the_exchanges_with_a_live_client() -> None:
    guides = load_guides()
    general = answer("live_test_exchanges")
    # Every exchange KeyMedic names has a live client (issue 17).
    assert all(g.live_check for g in guides.values())
    assert all(g.name in general for g in guides.values())
    assert answer("live_test_exchanges", "bybit").startswith("I can test Bybit keys live")
    assert answer("live_test_exchanges", "kraken").startswith("I can test Kraken keys live")


def test_exchange_specific_topics_carry_the_references_facts() -> None:
    assert has(answer("coinbase_algorithm"), "ECDSA", "Ed25519 keys don't work")
    assert has(answer("coinbase_legacy_key"), "16-character", "February 2025", "CDP")
    assert has(answer("coinbase_portfolio"), "one portfolio")
    assert has(answer("kucoin_key_version"), "version 3")
    assert has(answer("okx_region"), "my.okx.com in the EEA", "app.okx.com in the US")
    assert has(answer("okx_demo_key"), "demo", "real account")
    assert has(answer("binance_key_type"), "generate", "RSA or Ed25519")
    assert has(answer("kraken_query_dates"), "blank", "whole history")
    assert has(answer("key_frozen", "gate_io"), "Gate.io", "locked or frozen", "new")
    assert has(answer("share_key_other_apps"), "own key", "nonce")


# -- the structure ------------------------------------------------------------------------------------------


def test_every_topic_answers_for_every_exchange_and_without_one() -> None:
    for topic in load_faq():
        assert answer(topic)
        for exchange in EXCHANGE_IDS:
            text = answer(topic, exchange)
            # No unfilled field: a renderer's missing value would show as "None" or a "{placeholder}".
            assert text and not re.search(r"\bNone\b(?! of)|[{}]", text), (topic, exchange)


def test_an_unknown_exchange_gets_the_general_answer_and_an_unknown_topic_is_a_key_error() -> None:
    assert answer("passphrase", "mtgox") == answer("passphrase")
    with pytest.raises(KeyError):
        answer("no_such_topic")


def test_plain_contract_intents_and_retrieval_keys_map_to_topics() -> None:
    assert topic_for_intent("ask_passphrase") == "passphrase"
    assert topic_for_intent("no_transactions") == "activity"
    assert topic_for_intent("faq_sync/tab_open") == "tab_open"
    assert topic_for_intent("faq/update_keeps_edits") == "update_keeps_edits"
    assert topic_for_intent("faq/nonsense") is None and topic_for_intent("greet") is None
    assert topic_for_intent("inform/tab_open") is None


def test_only_answers_that_change_with_the_exchange_look_the_wallet_up() -> None:
    assert depends_on_exchange("passphrase") and depends_on_exchange("key_expiry")
    assert not depends_on_exchange("tab_open")


def test_the_domains_retrieval_responses_are_copies_of_the_general_answers() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    copies = {
        name.split("/", 1)[1]: variants[0]["text"]
        for name, variants in domain["responses"].items()
        if name.startswith("utter_faq")
    }
    retrieval = {t.topic for t in load_faq().values() if not t.intents}
    assert set(copies) == retrieval
    assert {t: text for t, text in copies.items() if text != answer(t)} == {}


def test_a_malformed_faq_file_names_the_topic_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "faq.yml"
    bad.write_text("- topic: tab_open\n  title: Close the tab?\n  answer: ''\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"topic 'tab_open': answer must be non-empty"):
        load_faq(bad)
    bad.write_text("- topic: x\n  title: X?\n  answer: Y.\n  exchanges: {mtgox: Z.}\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"exchanges.mtgox is not an exchange id"):
        load_faq(bad)


def test_the_faq_intents_are_read_as_one_when_one_of_them_leads() -> None:
    from bot.knowledge import one_faq_reading

    ranking = [("faq", 0.51), ("faq_sync", 0.12), ("update_key", 0.2), ("faq_exchange", 0.05)]
    assert one_faq_reading(ranking) == [("faq", 0.68), ("update_key", 0.2)]


def test_a_flow_intent_in_the_lead_keeps_the_ranking_as_it_is() -> None:
    from bot.knowledge import one_faq_reading

    ranking = [("update_key", 0.4), ("faq", 0.3), ("faq_sync", 0.2)]
    assert one_faq_reading(ranking) == ranking


def test_a_close_call_between_removal_and_an_faq_goes_to_removal() -> None:
    from bot.knowledge import removal_wins_a_close_call

    assert removal_wins_a_close_call([("faq", 0.47), ("remove_exchange", 0.44), ("greet", 0.02)]) == [
        ("remove_exchange", 0.47),
        ("greet", 0.02),
    ]
    assert removal_wins_a_close_call([("remove_exchange", 0.48), ("faq", 0.44)]) == [
        ("remove_exchange", 0.48)
    ]


def test_a_clear_faq_lead_or_a_close_call_without_removal_is_left_alone() -> None:
    from bot.knowledge import removal_wins_a_close_call

    clear = [("faq", 0.7), ("remove_exchange", 0.2)]
    other = [("faq", 0.45), ("update_key", 0.44)]
    flows = [("remove_exchange", 0.45), ("upload_csv", 0.44)]
    assert [removal_wins_a_close_call(r) for r in (clear, other, flows)] == [clear, other, flows]


def _parse(pick: str, confidence: float, ranking: list[str]) -> dict[str, object]:
    return {
        "intent_ranking": [{"name": name} for name in ranking],
        "response_selector": {
            "default": {"response": {"intent_response_key": pick, "confidence": confidence}}
        },
    }


def test_an_unsure_faq_pick_gives_way_to_a_key_setting_question_close_behind() -> None:
    from bot.knowledge.fallback import question_for

    asked = _parse("faq_exchange/coinbase_legacy_key", 0.23, ["faq_exchange", "ask_permissions", "greet"])
    assert question_for(asked) == "ask_permissions"


def test_a_sure_faq_pick_or_no_key_setting_runner_up_keeps_the_pick() -> None:
    from bot.knowledge.fallback import question_for

    sure = _parse("faq_exchange/coinbase_legacy_key", 0.8, ["faq_exchange", "ask_permissions"])
    unsure_alone = _parse("faq_sync/tab_open", 0.2, ["faq_sync", "greet", "thank"])
    assert [question_for(sure), question_for(unsure_alone)] == [
        "faq_exchange/coinbase_legacy_key",
        "faq_sync/tab_open",
    ]
