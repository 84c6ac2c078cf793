"""`bot.redaction`: every sandbox key shape is taken out of a message; ordinary messages pass untouched.

The ordinary corpus is every example of the NLU training data and the held-out set (what users are expected
to write), plus the messages a crypto-tax user writes that look most like keys: ids, hashes, addresses, file
names, links KeyMedic sent them.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import uuid
from pathlib import Path

import pytest
import yaml

from bot.redaction import KINDS, REDACTED, find_secrets, redact, redact_value
from bot.sandbox.scenarios import SANDBOX_EXCHANGES, credentials_for, scenarios_for

ROOT = Path(__file__).resolve().parents[2]
NLU_FILES = sorted((ROOT / "data" / "nlu").glob("*.yml")) + [ROOT / "tests" / "nlu" / "heldout.yml"]
# `[text](entity)` and `[text]{"entity": …}` are annotations of the training format, not what users type.
_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")

SANDBOX_VALUES = [
    pytest.param(exchange, scenario, field, value, id=f"{exchange}-{scenario}-{field}")
    for exchange in SANDBOX_EXCHANGES
    for scenario in scenarios_for(exchange)
    for field, value in credentials_for(exchange, scenario).items()
]


def _fragments(value: str) -> list[str]:
    """Pieces of a secret that must not survive: each line of a PEM key, or the value itself."""
    lines = [line.strip() for line in re.split(r"\n|\\n", value)]
    return [line for line in lines if len(line) >= 8 and "PRIVATE KEY" not in line] or [value]


def _assert_gone(value: str, text: str) -> None:
    for fragment in _fragments(value):
        assert fragment not in text


def _nlu_texts() -> list[str]:
    texts = []
    for path in NLU_FILES:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in document.get("nlu", []):
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    texts.append(_ANNOTATION.sub(r"\1", line[2:]))
    return texts


# -- every sandbox key shape -------------------------------------------------------------------------------


@pytest.mark.parametrize(("exchange", "scenario", "field", "value"), SANDBOX_VALUES)
def test_a_pasted_sandbox_value_is_redacted_in_every_wrapping(
    exchange: str, scenario: str, field: str, value: str
) -> None:
    wrappings = [
        value,
        f"my {exchange} key stopped working, here it is: {value} can you check?",
        f"{field}: {value}",
        f"{field}={value}",
        json.dumps({field: value}),
        f'"{value}"',
        f"({value}).",
    ]
    for message in wrappings:
        result = redact(message)
        assert result.redacted, message
        assert REDACTED in result.text
        _assert_gone(value, result.text)
        assert set(result.kinds) <= set(KINDS)


@pytest.mark.parametrize("exchange", SANDBOX_EXCHANGES)
def test_a_whole_credential_pasted_at_once_leaves_nothing(exchange: str) -> None:
    creds = credentials_for(exchange, "valid")
    pasted = "\n".join(f"{name} {value}" for name, value in creds.items())
    as_json = json.dumps(creds, indent=2)
    for message in (pasted, as_json, f"here you go {as_json} thanks"):
        result = redact(message)
        for value in creds.values():
            _assert_gone(value, result.text)


EXPECTED_KINDS = {
    ("coinbase", "api_key"): "coinbase_api_key",
    ("coinbase", "api_secret"): "private_key",
    ("kraken", "api_key"): "kraken_api_key",
    ("kraken", "api_secret"): "kraken_secret",
    ("kucoin", "api_key"): "kucoin_api_key",
    ("kucoin", "api_secret"): "uuid_secret",
    ("kucoin", "passphrase"): "passphrase",
    ("binance", "api_key"): "binance_key",
    ("binance", "api_secret"): "binance_key",
    ("binance_us", "api_key"): "binance_key",
    ("okx", "api_key"): "uuid_secret",
    ("okx", "api_secret"): "hex_secret",
    ("okx", "passphrase"): "passphrase",
    ("gemini", "api_key"): "gemini_api_key",
    ("gemini", "api_secret"): "token",
    ("bitstamp", "api_key"): "token",
    ("bitstamp", "api_secret"): "token",
}


@pytest.mark.parametrize(("exchange", "field"), sorted(EXPECTED_KINDS))
def test_the_kind_names_the_shape_and_never_the_value(exchange: str, field: str) -> None:
    value = credentials_for(exchange, "valid")[field]
    result = redact(f"this is it {value}")
    assert result.kinds == (EXPECTED_KINDS[exchange, field],)
    assert value not in repr(find_secrets(value))


def test_a_coinbase_key_with_literal_newlines_is_taken_out_whole() -> None:
    pem = credentials_for("coinbase", "valid")["api_secret"]
    escaped = json.dumps(pem)[1:-1]  # as it sits in Coinbase's downloaded JSON file
    assert "\\n" in escaped
    result = redact(f'{{"privateKey": "{escaped}"}}')
    assert result.kinds == ("private_key",)
    _assert_gone(pem, result.text)


def test_a_private_key_cut_off_before_its_end_is_still_taken_out() -> None:
    pem = credentials_for("coinbase", "valid")["api_secret"]
    result = redact("it starts with " + pem[:150])
    assert result.kinds == ("private_key",)
    _assert_gone(pem[:150], result.text)
    assert result.text == f"it starts with {REDACTED}"


def _random(chars: str, length: int, rng: random.Random) -> str:
    return "".join(rng.choice(chars) for _ in range(length))


def test_real_key_shapes_beyond_the_sandbox_markers_are_redacted() -> None:
    # The sandbox keys carry a marker; real keys are random in the same shapes (reference/exchanges.md).
    rng = random.Random(6)
    alnum = string.ascii_letters + string.digits
    base58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    for _ in range(50):
        shapes = {
            "kraken_api_key": base64.b64encode(rng.randbytes(42)).decode(),
            "kraken_secret": base64.b64encode(rng.randbytes(64)).decode(),
            "binance_key": _random(alnum, 64, rng),
            "kucoin_api_key": rng.randbytes(12).hex(),
            "uuid_secret": str(uuid.UUID(bytes=rng.randbytes(16), version=4)),
            "hex_secret": rng.randbytes(16).hex().upper(),
            "gemini_api_key": "account-" + _random(alnum, 20, rng),
        }
        for kind, value in shapes.items():
            result = redact(f"here: {value}")
            assert result.kinds == (kind,), (kind, value)
            assert value not in result.text
        for value in (_random(base58, 28, rng), _random(alnum, 32, rng), rng.randbytes(32).hex()):
            result = redact(f"the secret {value} ok")
            assert result.redacted and value not in result.text, value


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("secret=hunter2x", "api_secret"),
        ("my password is P@ssw0rd", "passphrase"),
        ("passphrase: Summer-2024!", "passphrase"),
        ("the passphrase is 84726153", "passphrase"),
        ('{"apiKey": "abc123def456"}', "api_key"),
        ("api_key = 'zz9-plural-z-alpha'", "api_key"),
        ("Tr0ub4dor&3xyz is what I set", "passphrase"),
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n",
            "token",
        ),
    ],
)
def test_named_values_and_bare_passphrases_are_redacted(message: str, kind: str) -> None:
    result = redact(message)
    assert kind in result.kinds
    assert REDACTED in result.text


def test_a_named_value_keeps_its_trailing_symbols_inside_the_redaction() -> None:
    assert redact("my passphrase is Summer-2024!").text == f"my passphrase is {REDACTED}"


# -- ordinary messages pass untouched ----------------------------------------------------------------------

ORDINARY = [
    "my kraken key stopped working",
    "Kraken says EAPI:Invalid key since yesterday",
    "binance error -2015 Invalid API-key, IP, or permissions for action.",
    "Error code 400005 Invalid KC-API-SIGN",
    "my key is invalid",
    "the passphrase is wrong",
    "my passphrase is stored in 1password",
    "the api key was revoked",
    "key: the one from yesterday",
    "secret is expired?",
    "the key is 3 days old",
    "my password is not the issue",
    "I sold 0.0341 BTC for $1,234.56 on 2024-03-01T12:00:00Z",
    "cost basis for ETH was $2,345.67 on 12/03/2023",
    "order id 1234567890123456789 is missing",
    "kraken txid OQCLML-BW3P3-BUCMWZ is not showing",
    "ref ATGN2OQ-ZZQ6CV-JHTBYJ",
    "tx 3a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 missing",
    "transaction hash: 3a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "coinbase transaction id 7c5f3b9e-2d4a-4f6b-9c8e-1a2b3c4d5e6f never arrived",
    "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060 is the hash",
    "sent to 0x742d35Cc6634C0532925a3b844Bc454e4438f44e yesterday",
    "my btc address is 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    "I sent it to 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq is my wallet",
    "I uploaded kraken_ledgers_2024-01-01_2024-12-31.csv",
    "see https://www.kraken.com/u/security/api and https://support.kraken.com/hc/en-us/articles/360000919966",
    "https://etherscan.io/tx/0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    '/inform{"wallet_id":"3"}',
    '/credentials_submitted{"credential_ref": "pc_O1tWz6EzNMNlH0ZtjFLUCKQdu4jMhBf_"}',
    "email me at jane.doe1987@gmail.com",
    "KEYMEDIC_KRAKEN_URL is set",
    "getApiKeyInfo returns permission denied",
    # Action and form names appear in every Rasa log line; short words between long ones are still words.
    "Calling action endpoint to run action 'action_handoff_to_support'.",
    "validate_key_update_form returned slot credential_ref",
    "I'm on iOS 17.2 with the Binance-US1 app",
    "Windows 11, Chrome 124.0.6367.91",
    "I have 2FA enabled via Google Authenticator",
    "wallet #12 on crypto.com",
    "my kraken, binance, coinbase, kucoin, okx, gemini and bitstamp wallets",
    "internationalization",
    "I used a VPN (NordVPN) when creating the key",
    # Rasa's log names the model it loads; the name is a fingerprint of the training data, not a secret.
    "Loading model models/keymedic-e407d312fb6e0c63.tar.gz...",
    "Loading model /work/main/models/keymedic-e407d312fb6e0c63.tar.gz",
    "see https://github.com/RasaHQ/rasa/blob/3.6.x/rasa/core/channels/slack.py for the connector",
    "https://docs.cdp.coinbase.com/coinbase-app/authentication-authorization/legacy-keys",
    "https://etherscan.io/tx/0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060/internal",
    "https://github.com/RasaHQ/rasa/commit/5e2dc06b7f3a1c0d9e8f7a6b5c4d3e2f1a0b9c8d",
    # Help-centre links: a number and a title, words joined by hyphens.
    "https://support.kraken.com/hc/en-us/articles/360000919966-How-to-create-an-API-key",
    "https://www.kucoin.com/support/360015102174-How-to-Create-an-API",
    "https://www.binance.com/en/support/faq/how-to-create-api-keys-on-binance-360002502072",
    "order 7c5f3b9e-2d4a-4f6b-9c8e-1a2b3c4d5e6f is missing",
    "https://www.coinbase.com/orders/7c5f3b9e-2d4a-4f6b-9c8e-1a2b3c4d5e6f",
    "the bot says action_ask_credential_ref and then action_check_api_key again and again",
    "reference pc_O1tWz6EzNMNlH0ZtjFLUCKQdu4jMhBf_ was accepted",
]


def test_the_nlu_corpus_is_large_enough_to_mean_something() -> None:
    assert len(_nlu_texts()) > 500


@pytest.mark.parametrize("message", _nlu_texts())
def test_no_nlu_example_is_altered(message: str) -> None:
    assert redact(message).text == message


@pytest.mark.parametrize("message", ORDINARY)
def test_ordinary_messages_pass_untouched(message: str) -> None:
    result = redact(message)
    assert result.text == message
    assert result.kinds == ()
    assert not result.redacted


# -- keys where a reference or a link would be (issue 15 item 10) -------------------------------------------

# Every shape the sandbox hands out except the PEM key (which is found by its header anywhere).
_SHAPES = [
    pytest.param(exchange, field, value, id=f"{exchange}-{field}")
    for exchange in SANDBOX_EXCHANGES
    for field, value in credentials_for(exchange, "valid").items()
    if "PRIVATE KEY" not in value
]


@pytest.mark.parametrize(("exchange", "field", "value"), _SHAPES)
def test_a_key_after_ref_or_key_is_redacted(exchange: str, field: str, value: str) -> None:
    for message in (
        f"ref {value}",
        f"reference: {value}",
        f"my {exchange} key ref is {value}",
        f"key {value}",
        f"the {exchange} key {value} stopped working",
    ):
        result = redact(message)
        assert result.redacted, message
        _assert_gone(value, result.text)


@pytest.mark.parametrize(("exchange", "field", "value"), _SHAPES)
def test_a_key_inside_a_url_is_redacted(exchange: str, field: str, value: str) -> None:
    for message in (
        f"https://api.example.com/v1/keys/{value}/status",
        f"https://api.example.com/v1/keys/{value}",
        f"I called https://api.example.com/check?apiKey={value}&x=1 and got 401",
        f"http://127.0.0.1:8765/check?k={value}",
        f"https://example.com/#{value}",
    ):
        result = redact(message)
        assert result.redacted, message
        _assert_gone(value, result.text)


def test_a_uuid_shaped_key_is_redacted_after_ref_or_key_and_in_a_url() -> None:
    key = str(uuid.UUID(int=random.Random(15).getrandbits(128), version=4))
    for message in (
        f"ref {key}",
        f"key ref: {key}",
        f"key {key}",
        f"https://www.okx.com/api/v5/{key}/config",
        f"https://example.com/?id={key}",
    ):
        result = redact(message)
        assert key not in result.text, message
        assert result.kinds == ("uuid_secret",), message


def test_a_form_token_is_redacted_wherever_it_appears() -> None:
    token = "it_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"  # "it_" and 43 url-safe base64 characters
    assert len(token) == len("it_") + 43
    for message in (
        f"the form at http://127.0.0.1:8080/intake/form#token={token} won't load",
        f"http://127.0.0.1:8080/intake/form?token={token}",
        f"token {token}",
        token,
    ):
        result = redact(message)
        assert token not in result.text, message
        assert result.kinds == ("form_token",), message


# -- metadata and limits -------------------------------------------------------------------------------------


def test_metadata_strings_are_redacted_at_any_depth() -> None:
    secret = credentials_for("kraken", "valid")["api_secret"]
    value, kinds = redact_value({"note": f"key {secret}", "items": [{"x": secret}, 3, None], "n": 1})
    assert kinds == ("kraken_secret",)
    assert secret not in json.dumps(value)
    assert value == {"note": f"key {REDACTED}", "items": [{"x": REDACTED}, 3, None], "n": 1}


def test_an_oversized_message_is_cut_rather_than_scanned() -> None:
    result = redact("a" * 100_000 + credentials_for("binance", "valid")["api_key"])
    assert result.text == "a" * 100_000 + REDACTED
    # Cut off unread, which is no sign of a secret: the user is not told to revoke a key (issue 19).
    assert result.kinds == ("unscanned",)


def test_plain_repeated_words_of_any_length_are_no_secret() -> None:
    # Issue 19: "word word word …" for 1 MB was answered "that looked like an API secret".
    for words in (1_000, 19_999, 20_000, 200_000):
        assert "token" not in redact("word " * words).kinds


def test_the_redactor_cost_grows_linearly_with_many_key_like_runs() -> None:
    # Each finding used to be checked against every earlier one: 93 kB of random 30-character runs took
    # 2.6 s. Timed against the same text ten times shorter, so a slow machine slows both alike.
    import random
    import string
    import time

    rng = random.Random(19)
    runs = ["".join(rng.choice(string.ascii_letters + string.digits) for _ in range(30)) for _ in range(3000)]

    def cost(text: str) -> float:
        started = time.perf_counter()
        result = redact(text)
        assert result.kinds == ("token",)
        return time.perf_counter() - started

    small, large = " ".join(runs[:300]), " ".join(runs)
    cost(small)  # warm up
    assert cost(large) < 25 * max(cost(small), 0.001)
