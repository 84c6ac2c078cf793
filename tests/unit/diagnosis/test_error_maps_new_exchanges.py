"""Bybit, Gate, Crypto.com and Bitfinex: each error code and response field maps to its checklist item, an
authentication error is asked once and ends the probe, and what the exchange does not report stays "can't
tell" with the reason (MockTransport handlers named after what they answer)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from bot.diagnosis import diagnose
from bot.types.diagnosis import Item, Status
from tests.unit.diagnosis.fakes import assert_answer_maps, credentials, fake, ok

FAIL, UNKNOWN, PASS = Status.FAIL, Status.UNKNOWN, Status.PASS
Handler = Callable[[httpx.Request], httpx.Response]

BYBIT_GATE = "/v5/user/query-api"
GATE_GATE = "/api/v4/account/detail"
CRYPTO_GATE = "/exchange/v1/private/user-balance"
BITFINEX_GATE = "/v2/auth/r/permissions"


def bybit_error(code: int) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        return ok({"retCode": code, "retMsg": "...", "result": {}})

    answer.__name__ = f"bybit_{code}"
    return answer


def bybit_key_info(**fields: object) -> Handler:
    base: dict[str, object] = {"readOnly": 1, "permissions": {"Wallet": []}, "ips": ["*"], "expiredAt": ""}

    def answer(request: httpx.Request) -> httpx.Response:
        return ok({"retCode": 0, "retMsg": "", "result": {**base, **fields}})

    answer.__name__ = "bybit_key_" + "_".join(fields)
    return answer


def gate_error(label: str, status: int = 401) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        return ok({"label": label, "message": "..."}, status)

    answer.__name__ = f"gate_{label.lower()}"
    return answer


def gate_main_keys(**fields: object) -> Handler:
    base: dict[str, object] = {
        "key": "0123****cdef",
        "state": 1,
        "perms": [{"name": "spot", "read_only": True}],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return ok([{**base, **fields}])

    answer.__name__ = "gate_main_keys_" + "_".join(fields)
    return answer


def gate_ip_whitelist(request: httpx.Request) -> httpx.Response:
    return ok({"user_id": 1, "ip_whitelist": ["203.0.113.7"], "key": {"mode": 1}})


def crypto_error(code: int, status: int = 401) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        return ok({"id": 1, "code": code, "message": "..."}, status)

    answer.__name__ = f"crypto_com_{code}"
    return answer


def bitfinex_error(message: str, code: int = 10100) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        return ok(["error", code, message], 500)

    answer.__name__ = "bitfinex_" + message.replace(" ", "_").replace(":", "")
    return answer


def bitfinex_scopes(*rows: list[object]) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        return ok(list(rows))

    answer.__name__ = "bitfinex_scopes"
    return answer


READ = [["history", 1, 0], ["wallets", 1, 0]]

CASES: list[tuple[str, str, Handler, dict[Item, Status], bool]] = [
    ("bybit", BYBIT_GATE, bybit_error(10003), {Item.KEY_KNOWN: FAIL, Item.SECRET_OK: UNKNOWN}, True),
    ("bybit", BYBIT_GATE, bybit_error(10004), {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL}, True),
    ("bybit", BYBIT_GATE, bybit_error(10005), {Item.READ_PERMISSION: FAIL}, True),
    ("bybit", BYBIT_GATE, bybit_error(10010), {Item.NO_IP_RESTRICTION: FAIL}, True),
    ("bybit", BYBIT_GATE, bybit_error(33004), {Item.ACTIVATED: FAIL}, True),
    ("bybit", BYBIT_GATE, bybit_error(10007), {Item.KEY_KNOWN: UNKNOWN}, True),
    ("bybit", BYBIT_GATE, bybit_key_info(readOnly=0), {Item.NO_TRADE_OR_WITHDRAW: FAIL}, False),
    (
        "bybit",
        BYBIT_GATE,
        bybit_key_info(permissions={"Wallet": ["AccountTransfer", "Withdraw"]}),
        {Item.NO_TRADE_OR_WITHDRAW: FAIL},
        False,
    ),
    ("bybit", BYBIT_GATE, bybit_key_info(ips=["203.0.113.7"]), {Item.NO_IP_RESTRICTION: FAIL}, False),
    ("bybit", BYBIT_GATE, bybit_key_info(expiredAt="2020-01-01T00:00:00Z"), {Item.ACTIVATED: FAIL}, False),
    ("gate_io", GATE_GATE, gate_error("INVALID_KEY"), {Item.KEY_KNOWN: FAIL, Item.SECRET_OK: UNKNOWN}, True),
    (
        "gate_io",
        GATE_GATE,
        gate_error("INVALID_SIGNATURE"),
        {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL},
        True,
    ),
    (
        "gate_io",
        GATE_GATE,
        gate_error("INVALID_CREDENTIALS"),
        {Item.KEY_KNOWN: UNKNOWN, Item.SECRET_OK: UNKNOWN},
        True,
    ),
    ("gate_io", GATE_GATE, gate_error("IP_FORBIDDEN", 403), {Item.NO_IP_RESTRICTION: FAIL}, True),
    ("gate_io", GATE_GATE, gate_error("FORBIDDEN", 403), {Item.READ_PERMISSION: FAIL}, True),
    ("gate_io", GATE_GATE, gate_error("ACCOUNT_LOCKED", 403), {Item.ACTIVATED: FAIL}, True),
    ("gate_io", GATE_GATE, gate_error("READ_ONLY", 403), {Item.READ_PERMISSION: FAIL}, True),
    ("gate_io", GATE_GATE, gate_ip_whitelist, {Item.NO_IP_RESTRICTION: FAIL}, False),
    (
        "gate_io",
        "/api/v4/account/main_keys",
        gate_main_keys(perms=[{"name": "spot", "read_only": False}]),
        {Item.NO_TRADE_OR_WITHDRAW: FAIL},
        False,
    ),
    ("gate_io", "/api/v4/account/main_keys", gate_main_keys(state=3), {Item.ACTIVATED: FAIL}, False),
    (
        "gate_io",
        "/api/v4/account/main_keys",
        gate_main_keys(key="ffff****0000"),
        {Item.NO_TRADE_OR_WITHDRAW: UNKNOWN},
        False,
    ),
    (
        "crypto_com",
        CRYPTO_GATE,
        crypto_error(40101),
        {Item.KEY_KNOWN: UNKNOWN, Item.SECRET_OK: UNKNOWN},
        True,
    ),
    ("crypto_com", CRYPTO_GATE, crypto_error(40103), {Item.NO_IP_RESTRICTION: FAIL}, True),
    ("crypto_com", CRYPTO_GATE, crypto_error(40104), {Item.READ_PERMISSION: FAIL}, True),
    (
        "bitfinex",
        BITFINEX_GATE,
        bitfinex_error("apikey: invalid"),
        {Item.KEY_KNOWN: FAIL, Item.SECRET_OK: UNKNOWN},
        True,
    ),
    (
        "bitfinex",
        BITFINEX_GATE,
        bitfinex_error("apikey: digest invalid"),
        {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL},
        True,
    ),
    (
        "bitfinex",
        BITFINEX_GATE,
        bitfinex_error("ERR_AUTH_UNAUTHORIZED"),
        {Item.KEY_KNOWN: UNKNOWN},
        True,
    ),
    (
        "bitfinex",
        BITFINEX_GATE,
        bitfinex_scopes(*READ, ["withdraw", 0, 1]),
        {Item.NO_TRADE_OR_WITHDRAW: FAIL},
        False,
    ),
    (
        "bitfinex",
        BITFINEX_GATE,
        bitfinex_scopes(*READ, ["orders", 1, 1]),
        {Item.NO_TRADE_OR_WITHDRAW: FAIL},
        False,
    ),
    ("bitfinex", BITFINEX_GATE, bitfinex_scopes(["history", 0, 0]), {Item.READ_PERMISSION: FAIL}, False),
]


@pytest.mark.parametrize(
    ("exchange", "path", "handler", "expected", "refused"),
    CASES,
    ids=[f"{case[0]}-{case[2].__name__}-{i}" for i, case in enumerate(CASES)],
)
async def test_exchange_answer_maps_to_the_right_item(
    exchange: str, path: str, handler: Handler, expected: dict[Item, Status], refused: bool
) -> None:
    await assert_answer_maps(exchange, path, handler, expected, refused)


@pytest.mark.parametrize("exchange", ["bybit", "gate_io", "crypto_com", "bitfinex"])
async def test_valid_key_passes_and_never_fails_anything(exchange: str) -> None:
    diagnosis = await diagnose(exchange, credentials(exchange), client=fake(exchange).client())
    assert diagnosis.failing() == ()
    assert diagnosis.unavailable is None
    for item in (Item.KEY_KNOWN, Item.SECRET_OK, Item.READ_PERMISSION, Item.HAS_ACTIVITY):
        assert diagnosis.outcome(item).status is PASS, item
    assert diagnosis.outcome(Item.PASSPHRASE_OK).status is Status.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("exchange", "reported"), [("crypto_com", False), ("bitfinex", False), ("bybit", True)]
)
async def test_an_exchange_that_reports_no_ip_information_says_so(exchange: str, reported: bool) -> None:
    diagnosis = await diagnose(exchange, credentials(exchange), client=fake(exchange).client())
    outcome = diagnosis.outcome(Item.NO_IP_RESTRICTION)
    if reported:
        assert outcome.status is PASS
    else:
        assert outcome.status is UNKNOWN
        assert "doesn't report" in (outcome.detail or "")


async def test_crypto_com_never_claims_permissions_it_cannot_see() -> None:
    diagnosis = await diagnose("crypto_com", credentials("crypto_com"), client=fake("crypto_com").client())
    outcome = diagnosis.outcome(Item.NO_TRADE_OR_WITHDRAW)
    assert outcome.status is UNKNOWN and "Can Read" in (outcome.detail or "")


UNAVAILABLE: list[tuple[str, str, httpx.Response, str]] = [
    (
        "bybit",
        BYBIT_GATE,
        ok({"retCode": 10006, "retMsg": "Too many visits!", "result": {}}),
        "rate_limited",
    ),
    ("bybit", BYBIT_GATE, httpx.Response(403, text="access too frequent"), "rate_limited"),
    ("bybit", BYBIT_GATE, ok({"retCode": 10002, "retMsg": "...", "result": {}}), "clock_skew"),
    ("gate_io", GATE_GATE, ok({"label": "TOO_MANY_REQUESTS", "message": "..."}, 429), "rate_limited"),
    ("gate_io", GATE_GATE, ok({"label": "REQUEST_EXPIRED", "message": "..."}, 401), "clock_skew"),
    ("crypto_com", CRYPTO_GATE, ok({"code": 42901, "message": "..."}, 429), "rate_limited"),
    ("crypto_com", CRYPTO_GATE, ok({"code": 40102, "message": "..."}, 401), "clock_skew"),
    ("bitfinex", BITFINEX_GATE, ok({"error": "ERR_RATE_LIMIT"}, 429), "rate_limited"),
    ("bitfinex", BITFINEX_GATE, ok(["error", 10114, "nonce: small"], 500), "clock_skew"),
    # The rest of each exchange's "no answer" codes (reference §9-§11, docs/exchanges/bybit.md).
    ("bybit", BYBIT_GATE, ok({"retCode": 10018, "retMsg": "...", "result": {}}), "rate_limited"),
    ("bybit", BYBIT_GATE, ok({"retCode": 10021, "retMsg": "...", "result": {}}), "clock_skew"),
    ("bybit", BYBIT_GATE, ok({"retCode": 10000, "retMsg": "...", "result": {}}), "server_error"),
    ("bybit", BYBIT_GATE, ok({"retCode": 10016, "retMsg": "...", "result": {}}), "server_error"),
    ("gate_io", GATE_GATE, ok({"label": "TOO_FAST", "message": "..."}, 429), "rate_limited"),
    ("gate_io", GATE_GATE, ok({"label": "TOO_MANY_REQUESTS", "message": "..."}, 400), "rate_limited"),
    ("gate_io", GATE_GATE, ok({"label": "SERVER_ERROR", "message": "..."}, 400), "server_error"),
    ("gate_io", GATE_GATE, ok({"label": "INTERNAL", "message": "..."}, 500), "server_error"),
    ("crypto_com", CRYPTO_GATE, ok({"code": 42901, "message": "..."}, 200), "rate_limited"),
    ("crypto_com", CRYPTO_GATE, ok({"code": 50001, "message": "..."}, 200), "server_error"),
    ("bitfinex", BITFINEX_GATE, ok(["error", 11010, "ratelimit: error"], 500), "rate_limited"),
    ("bitfinex", BITFINEX_GATE, ok(["error", 20060, "maintenance"], 503), "server_error"),
]


@pytest.mark.parametrize(("exchange", "path", "answer", "kind"), UNAVAILABLE)
async def test_rate_limits_and_clock_problems_are_never_a_bad_key(
    exchange: str, path: str, answer: httpx.Response, kind: str
) -> None:
    # A short deadline: server errors are retried with back-off until it runs out.
    diagnosis = await diagnose(
        exchange, credentials(exchange), client=fake(exchange, {path: answer}).client(), deadline_s=1.0
    )
    assert diagnosis.unavailable is not None and diagnosis.unavailable.kind == kind
    assert diagnosis.failing() == ()


def _tested_codes() -> dict[str, set[str]]:
    """Every code or label the tests above send, per exchange."""
    tested: dict[str, set[str]] = {name: set() for name in ("bybit", "gate_io", "crypto_com", "bitfinex")}
    for exchange, _, handler, _, _ in CASES:
        response = handler(httpx.Request("GET", "https://example.invalid/"))
        tested[exchange].add(_code_of(response))
    for param in UNAVAILABLE:
        exchange, _, response, _ = param
        tested[exchange].add(_code_of(response))
    return tested


def _code_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, list) and body[:1] == ["error"]:
        return str(body[2])
    if isinstance(body, dict):
        for field in ("retCode", "label", "code", "error"):
            if field in body:
                return str(body[field])
    return ""


@pytest.mark.parametrize(
    ("module", "tables"),
    [
        ("bybit", ("ERRORS", "_CLOCK_CODES", "_RATE_LIMIT_CODES", "_SERVER_CODES")),
        ("gate_io", ("ERRORS", "_CLOCK_LABELS", "_RATE_LIMIT_LABELS", "_SERVER_LABELS")),
        ("crypto_com", ("ERRORS", "_CLOCK_CODES", "_RATE_LIMIT_CODES")),
        ("bitfinex", ("ERRORS",)),
    ],
)
def test_every_code_the_client_knows_has_a_test_of_its_verdict(module: str, tables: tuple[str, ...]) -> None:
    """A code added to a map without a test of what it means fails here."""
    import importlib

    client = importlib.import_module(f"bot.exchanges.{module}")
    known = {str(code) for table in tables for code in getattr(client, table)}
    missing = known - _tested_codes()[module]
    assert not missing, f"{module}: no verdict test for {sorted(missing)}"
