"""The per-exchange knowledge file: one checked guide per exchange id, true to the article's rules."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.exchange_ids import DISPLAY_NAMES, EXCHANGE_IDS
from bot.exchanges import LIVE_CLIENTS, client_class
from bot.knowledge import (
    DEFAULT_PATH,
    ExchangeGuide,
    KnowledgeError,
    api_page_link,
    checklist_questions,
    csv_backup_steps,
    guide_for,
    load_guides,
    new_key_steps,
)
from bot.types.diagnosis import Item

GUIDES = load_guides()


def texts_of(guide: ExchangeGuide) -> Iterator[str]:
    """Every sentence-like text a guide holds."""
    yield guide.api_page.where
    for optional in (
        guide.create_note,
        guide.permissions.note,
        guide.passphrase.note,
        guide.activation,
        guide.ip_restriction.note,
        guide.activity,
    ):
        if optional is not None:
            yield optional
    yield from guide.key_format
    yield guide.csv_export


def rendered(guide: ExchangeGuide) -> list[str]:
    return [
        *new_key_steps(guide),
        *(q.text for q in checklist_questions(guide, list(Item))),
        *csv_backup_steps(guide),
    ]


def test_every_exchange_id_has_exactly_one_guide_with_its_display_name() -> None:
    assert list(GUIDES) == list(EXCHANGE_IDS)
    for exchange, guide in GUIDES.items():
        assert guide.id == exchange
        assert guide.name == DISPLAY_NAMES[exchange]
        assert guide_for(exchange) is guide


def test_guide_for_an_unknown_id_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="kraken_pro"):
        guide_for("kraken_pro")


def test_live_check_is_set_exactly_for_the_exchanges_with_a_live_client() -> None:
    assert {g.id for g in GUIDES.values() if g.live_check} == set(LIVE_CLIENTS)
    # Every exchange KeyMedic names gets a live test (issue 17).
    assert {g.id for g in GUIDES.values() if not g.live_check} == set()


def test_passphrase_exchanges_are_kucoin_and_okx_as_the_live_clients_expect() -> None:
    with_passphrase = {g.id for g in GUIDES.values() if g.passphrase.created}
    assert with_passphrase == {"kucoin", "okx"}
    assert with_passphrase == {e for e in LIVE_CLIENTS if client_class(e).needs_passphrase}


def test_coinbase_explains_what_to_save_instead_of_a_passphrase() -> None:
    # The article names Coinbase Advanced as a passphrase exchange; today's CDP keys are a key name plus a
    # private key (reference/exchanges.md §0.6), so the passphrase step says what to save instead.
    coinbase = guide_for("coinbase")
    assert coinbase.passphrase.note is not None
    assert "no passphrase" in coinbase.passphrase.note
    assert "organizations/" in coinbase.passphrase.note
    assert "-----BEGIN EC PRIVATE KEY-----" in coinbase.passphrase.note
    hints = " ".join(coinbase.key_format)
    assert "ECDSA" in hints and "Ed25519" in hints and "February 2025" in hints
    assert (coinbase.labels.key, coinbase.labels.secret) == ("key name", "private key")


def test_reference_specifics_are_kept() -> None:
    assert "empty account" in (guide_for("kraken").activity or "")
    assert "base64" in " ".join(guide_for("kraken").key_format)
    assert "email" in (guide_for("bitstamp").activation or "")
    assert "version" in " ".join(guide_for("kucoin").key_format)
    assert "API Management" in guide_for("kucoin").api_page.where
    assert guide_for("gemini").permissions.turn_on == ("Auditor",)


_MOVES_FUNDS = re.compile(r"withdraw|transfer|\btrad(e|er|ing)\b|fund manager|administrator", re.IGNORECASE)
_SWITCH_ON = re.compile(r"\b(turn on|enable|select|tick|choose|pick)\b", re.IGNORECASE)


@pytest.mark.parametrize("exchange", EXCHANGE_IDS)
def test_no_guide_suggests_enabling_withdrawal_or_trading(exchange: str) -> None:
    guide = guide_for(exchange)
    for permission in guide.permissions.turn_on:
        assert not _MOVES_FUNDS.search(permission), permission
    for text in [*texts_of(guide), *rendered(guide)]:
        for sentence in re.split(r"(?<=[.?!;])\s+", text):
            if _SWITCH_ON.search(sentence) and " off" not in sentence:
                assert not _MOVES_FUNDS.search(sentence), sentence
    permissions_step = new_key_steps(guide)[1]
    assert "read access only" in permissions_step and "off" in permissions_step


@pytest.mark.parametrize("exchange", EXCHANGE_IDS)
def test_every_url_is_https(exchange: str) -> None:
    guide = guide_for(exchange)
    for url in (guide.api_page.settings_url, guide.api_page.help_url):
        assert url is None or url.startswith("https://")
    link = api_page_link(guide)
    assert link is None or (link[0] and link[1].startswith("https://"))


@pytest.mark.parametrize("exchange", EXCHANGE_IDS)
def test_texts_are_tidy_sentences_without_leaked_yaml_comments(exchange: str) -> None:
    for text in texts_of(guide_for(exchange)):
        assert "#" not in text and "unconfirmed" not in text.lower(), text
        assert text[0].isupper() and text[-1] in ".!?", text
        assert "  " not in text and "\n" not in text, text


@pytest.mark.parametrize("exchange", EXCHANGE_IDS)
def test_new_key_steps_follow_the_article_order(exchange: str) -> None:
    guide = guide_for(exchange)
    steps = new_key_steps(guide)
    expected = [guide.api_page.where, "read access only"]
    if guide.passphrase.note is not None:
        expected.append(guide.passphrase.note)
    expected += ["Activate the key", "Leave IP restrictions off", "Make sure the account has activity"]
    assert len(steps) == len(expected)
    for step, marker in zip(steps, expected, strict=True):
        assert marker in step
    if not guide.passphrase.created and guide.passphrase.note is None:
        assert not any("passphrase" in step for step in steps)


def test_steps_are_specialised_for_the_exchange() -> None:
    kraken = new_key_steps(guide_for("kraken"))
    assert "Query Ledger Entries" in kraken[1]
    assert "IP allowlist" in kraken[3]
    assert "empty account" in kraken[4]
    kucoin = new_key_steps(guide_for("kucoin"))
    assert "passphrase" in kucoin[2]
    bitstamp = new_key_steps(guide_for("bitstamp"))
    assert "activation link" in bitstamp[2]


def test_checklist_follows_the_article_order_whatever_order_items_come_in() -> None:
    questions = checklist_questions(guide_for("kucoin"), reversed(list(Item)))
    assert [q.items for q in questions] == [
        (Item.FORMAT, Item.KEY_KNOWN, Item.SECRET_OK),
        (Item.PASSPHRASE_OK,),
        (Item.READ_PERMISSION,),
        (Item.NO_TRADE_OR_WITHDRAW,),
        (Item.ACTIVATED,),
        (Item.NO_IP_RESTRICTION,),
        (Item.HAS_ACTIVITY,),
    ]
    assert "full API key and API secret" in questions[0].text
    assert "passphrase" in questions[1].text
    assert "General" in questions[2].text


def test_checklist_asks_only_about_the_items_given() -> None:
    kraken = guide_for("kraken")
    assert checklist_questions(kraken, []) == []
    only_ip = checklist_questions(kraken, [Item.NO_IP_RESTRICTION])
    assert [q.items for q in only_ip] == [(Item.NO_IP_RESTRICTION,)]
    assert "IP allowlist" in only_ip[0].text
    secret = checklist_questions(kraken, [Item.SECRET_OK, Item.HAS_ACTIVITY])
    assert [q.items for q in secret] == [(Item.SECRET_OK,), (Item.HAS_ACTIVITY,)]


def test_no_passphrase_question_for_an_exchange_without_one() -> None:
    for exchange in ("kraken", "coinbase", "bybit"):
        assert checklist_questions(guide_for(exchange), [Item.PASSPHRASE_OK]) == []


def test_csv_backup_steps_export_then_upload() -> None:
    steps = csv_backup_steps(guide_for("okx"))
    assert len(steps) == 2
    assert "OKX" in steps[0] and "CSV" in steps[0] and "help centre" in steps[0]
    assert steps[1].startswith("Upload")


def test_api_page_link_prefers_the_settings_page_then_the_exchanges_own_guide() -> None:
    import dataclasses

    kraken = guide_for("kraken")
    assert api_page_link(kraken) == (
        "Kraken's guide to API key permissions",
        "https://docs.kraken.com/exchange/guides/rest/api-keys",
    )
    with_page = dataclasses.replace(
        kraken, api_page=dataclasses.replace(kraken.api_page, settings_url="https://example.test/api")
    )
    assert api_page_link(with_page) == ("Open Kraken's API settings", "https://example.test/api")
    assert api_page_link(guide_for("bybit")) is None


def test_guides_are_loaded_once_and_shared_read_only() -> None:
    assert load_guides() is load_guides()
    with pytest.raises(TypeError):
        load_guides()["kraken"] = guide_for("kraken")  # type: ignore[index]


def test_importing_the_package_stays_framework_free() -> None:
    code = (
        "import sys, bot.knowledge; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rasa', 'rasa_sdk')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------ validation


def raw_entries() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    return data


def write(tmp_path: Path, entries: object) -> Path:
    path = tmp_path / "exchanges.yml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def entry(entries: list[dict[str, Any]], exchange: str) -> dict[str, Any]:
    return next(e for e in entries if e["id"] == exchange)


def test_a_valid_copy_loads_from_another_path(tmp_path: Path) -> None:
    guides = load_guides(write(tmp_path, raw_entries()))
    assert guides == GUIDES and guides is not GUIDES


def test_a_missing_exchange_is_named(tmp_path: Path) -> None:
    entries = [e for e in raw_entries() if e["id"] != "gate_io"]
    with pytest.raises(KnowledgeError, match="no entry for gate_io"):
        load_guides(write(tmp_path, entries))


def test_a_repeated_exchange_is_named(tmp_path: Path) -> None:
    entries = raw_entries()
    entries.append(entry(entries, "okx"))
    with pytest.raises(KnowledgeError, match="entry 'okx': exchange id appears more than once"):
        load_guides(write(tmp_path, entries))


def test_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "exchanges.yml"
    text = DEFAULT_PATH.read_text(encoding="utf-8").replace(
        "  live_check: true\n", "  live_check: true\n  live_check: false\n", 1
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError, match="duplicate key 'live_check'"):
        load_guides(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda e: e["api_page"].update(help_url="http://docs.kraken.com/x"),
            "api_page.help_url must be an https",
        ),
        (
            lambda e: e["api_page"].update(settings_url="kraken.com/api"),
            "api_page.settings_url must be an https",
        ),
        (lambda e: e["api_page"].update(where="  "), "api_page.where must be non-empty text"),
        (lambda e: e.update(csv_export=None), "csv_export must be non-empty text"),
        (lambda e: e.update(name="Kraken Pro"), "name 'Kraken Pro' differs"),
        (lambda e: e.update(live_check="yes"), "live_check must be true or false"),
        (lambda e: e["passphrase"].update(created=True, note=None), "passphrase.note must say what to save"),
        (lambda e: e["permissions"].update(turn_on="Query Funds"), "permissions.turn_on must be a list"),
        (lambda e: e.update(extra="x"), "unknown field"),
        (lambda e: e.pop("activity"), "missing field"),
        (lambda e: e["api_page"].update(help_label=None), "help_url and help_label together"),
    ],
)
def test_a_bad_field_is_reported_with_its_entry(tmp_path: Path, change: Any, message: str) -> None:
    entries = raw_entries()
    change(entry(entries, "kraken"))
    with pytest.raises(KnowledgeError, match=f"entry 'kraken': .*{re.escape(message)}"):
        load_guides(write(tmp_path, entries))


def test_an_unknown_exchange_id_is_refused(tmp_path: Path) -> None:
    entries = raw_entries()
    entry(entries, "bybit")["id"] = "mexc"
    with pytest.raises(KnowledgeError, match="'mexc' is not an exchange id"):
        load_guides(write(tmp_path, entries))


# Issue 17's four exchanges: each fact pinned to its source (reference/exchanges.md §9-§11,
# docs/exchanges/bybit.md), so a wrong edit of exchanges.yml fails here.
NEW_EXCHANGE_FACTS = {
    # exchange: (what to turn on, a fact of its permission model, where the allowlist is called)
    "bybit": ("Read-Only", "system-generated", "IP restriction settings"),  # bybit.md: readOnly, RSA keys
    "gate_io": ("read-only access to your account", "futures", "IP whitelist"),  # §11: futures-only 403
    "crypto_com": ("Can Read", "starts with Can Read", "IP whitelist"),  # §10: keys default to Can Read
    "bitfinex": ("read access for account, history", "read or write for each part", "IP restriction"),  # §9
}


@pytest.mark.parametrize("exchange", sorted(NEW_EXCHANGE_FACTS))
def test_the_four_new_exchanges_are_covered_like_the_others(exchange: str) -> None:
    from bot.knowledge import answer

    guide = guide_for(exchange)
    turn_on, permission_fact, allowlist = NEW_EXCHANGE_FACTS[exchange]
    steps = new_key_steps(guide)
    assert guide.live_check
    assert turn_on in steps[1] and permission_fact in steps[1]
    assert allowlist in steps[3]
    # None of the four makes a passphrase (§9-§11 sign with key and secret only; Bybit: bybit.md).
    assert not guide.passphrase.created
    assert "don't come with a passphrase" in answer("passphrase", exchange)
    assert not any("passphrase" in step.lower() for step in steps)
    assert f"test {guide.name} keys live" in answer("live_test_exchanges", exchange)
    assert csv_backup_steps(guide)[0].startswith(f"Export your transaction history from {guide.name}")


def test_bybit_warns_that_keys_without_an_ip_expire() -> None:
    # docs/exchanges/bybit.md: keys with no IP bound expire (33004 "API key expired").
    assert "expires keys that aren't bound to an IP" in new_key_steps(guide_for("bybit"))[3]
