"""Each exchange's error codes and response fields map to the right checklist item (MockTransport handlers
named after what they answer). An authentication error is requested exactly once and stops the probe."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from bot.diagnosis import diagnose
from bot.types.diagnosis import Item, Status
from tests.unit.diagnosis.fakes import assert_answer_maps, credentials, fake, ok

FAIL, UNKNOWN, PASS = Status.FAIL, Status.UNKNOWN, Status.PASS


def kraken_error(code: str) -> httpx.Response:
    return ok({"error": [code], "result": {}})


def kraken_key_revoked(request: httpx.Request) -> httpx.Response:
    return kraken_error("EAPI:Invalid key")


def kraken_wrong_secret(request: httpx.Request) -> httpx.Response:
    return kraken_error("EAPI:Invalid signature")


def kraken_account_unconfirmed(request: httpx.Request) -> httpx.Response:
    return kraken_error("EAuth:Account unconfirmed")


def kraken_permission_denied(request: httpx.Request) -> httpx.Response:
    return kraken_error("EGeneral:Permission denied")


def kraken_withdrawals_on(request: httpx.Request) -> httpx.Response:
    return ok({"error": [], "result": {"permissions": ["query-funds", "withdraw-funds"], "ipAllowlist": []}})


def kraken_trading_on(request: httpx.Request) -> httpx.Response:
    return ok({"error": [], "result": {"permissions": ["query-funds", "modify-trades"], "ipAllowlist": []}})


def kraken_ip_allowlist(request: httpx.Request) -> httpx.Response:
    return ok({"error": [], "result": {"permissions": ["query-funds"], "ipAllowlist": ["203.0.113.7"]}})


def kraken_no_ledger_entries(request: httpx.Request) -> httpx.Response:
    return ok({"error": [], "result": {"ledger": {}, "count": 0}})


def binance_error(code: int, status: int = 400) -> httpx.Response:
    return ok({"code": code, "msg": "..."}, status)


def binance_invalid_key_ip_or_permissions(request: httpx.Request) -> httpx.Response:
    return binance_error(-2015, 401)


def binance_bad_signature(request: httpx.Request) -> httpx.Response:
    return binance_error(-1022)


def binance_bad_key_format(request: httpx.Request) -> httpx.Response:
    return binance_error(-2014)


def binance_withdrawals_on(request: httpx.Request) -> httpx.Response:
    return ok({"ipRestrict": True, "enableReading": True, "enableWithdrawals": True})


def binance_ip_restricted(request: httpx.Request) -> httpx.Response:
    return ok({"ipRestrict": True, "enableReading": True, "enableWithdrawals": False})


def binance_reading_off(request: httpx.Request) -> httpx.Response:
    return ok({"ipRestrict": False, "enableReading": False, "enableWithdrawals": False})


def coinbase_unauthorized(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, text="Unauthorized")


def coinbase_missing_scopes(request: httpx.Request) -> httpx.Response:
    return ok({"error": "PERMISSION_DENIED", "message": "Missing required scopes"}, 403)


def coinbase_transfer_on(request: httpx.Request) -> httpx.Response:
    return ok({"can_view": True, "can_trade": False, "can_transfer": True})


def kucoin_error(code: str, status: int = 401) -> httpx.Response:
    return ok({"code": code, "msg": "..."}, status)


def kucoin_key_unknown(request: httpx.Request) -> httpx.Response:
    return kucoin_error("400003")


def kucoin_wrong_passphrase(request: httpx.Request) -> httpx.Response:
    return kucoin_error("400004")


def kucoin_wrong_signature(request: httpx.Request) -> httpx.Response:
    return kucoin_error("400005")


def kucoin_ip_not_allowed(request: httpx.Request) -> httpx.Response:
    return kucoin_error("400006")


def kucoin_needs_more_permission(request: httpx.Request) -> httpx.Response:
    return kucoin_error("400007")


def kucoin_user_frozen(request: httpx.Request) -> httpx.Response:
    return kucoin_error("411100")


def kucoin_withdrawal_permission(request: httpx.Request) -> httpx.Response:
    return ok({"code": "200000", "data": {"permission": "General,Withdrawal", "ipWhitelist": ""}})


def kucoin_ip_whitelist(request: httpx.Request) -> httpx.Response:
    return ok({"code": "200000", "data": {"permission": "General", "ipWhitelist": "203.0.113.7"}})


def okx_error(code: str) -> httpx.Response:
    return ok({"code": code, "msg": "...", "data": []}, 401)


def okx_key_unknown(request: httpx.Request) -> httpx.Response:
    return okx_error("50111")


def okx_wrong_passphrase(request: httpx.Request) -> httpx.Response:
    return okx_error("50105")


def okx_invalid_sign(request: httpx.Request) -> httpx.Response:
    return okx_error("50113")


def okx_ip_not_whitelisted(request: httpx.Request) -> httpx.Response:
    return okx_error("50110")


def okx_key_frozen(request: httpx.Request) -> httpx.Response:
    return okx_error("50100")


def okx_demo_key(request: httpx.Request) -> httpx.Response:
    return okx_error("50101")


def okx_trade_permission(request: httpx.Request) -> httpx.Response:
    return ok({"code": "0", "data": [{"perm": "read_only,trade", "ip": ""}]})


def okx_bound_ip(request: httpx.Request) -> httpx.Response:
    return ok({"code": "0", "data": [{"perm": "read_only", "ip": "203.0.113.7"}]})


def gemini_error(reason: str, status: int = 400) -> httpx.Response:
    return ok({"result": "error", "reason": reason, "message": "..."}, status)


def gemini_invalid_api_key(request: httpx.Request) -> httpx.Response:
    return gemini_error("InvalidApiKey")


def gemini_invalid_signature(request: httpx.Request) -> httpx.Response:
    return gemini_error("InvalidSignature")


def gemini_missing_role(request: httpx.Request) -> httpx.Response:
    return gemini_error("MissingRole", 403)


def gemini_fund_manager(request: httpx.Request) -> httpx.Response:
    return ok({"isAuditor": True, "isTrader": False, "isFundManager": True})


def gemini_no_transfers(request: httpx.Request) -> httpx.Response:
    return ok([])


def bitstamp_error(reason: str, code: str) -> httpx.Response:
    return ok({"status": "error", "reason": reason, "code": code}, 403)


def bitstamp_key_not_found(request: httpx.Request) -> httpx.Response:
    return bitstamp_error("API key not found", "API0002")


def bitstamp_invalid_signature(request: httpx.Request) -> httpx.Response:
    return bitstamp_error("Invalid signature", "API0005")


def bitstamp_ip_not_allowed(request: httpx.Request) -> httpx.Response:
    return bitstamp_error("IP address not allowed", "API0003")


def bitstamp_no_permission(request: httpx.Request) -> httpx.Response:
    return bitstamp_error("No permission found", "API0010")


def bitstamp_no_transactions(request: httpx.Request) -> httpx.Response:
    return ok([])


KRAKEN_GATE = "/0/private/GetApiKeyInfo"
BINANCE_GATE = "/sapi/v1/account/apiRestrictions"
COINBASE_GATE = "/api/v3/brokerage/key_permissions"
KUCOIN_GATE = "/api/v1/user/api-key"
OKX_GATE = "/api/v5/account/config"
BITSTAMP_GATE = "/api/v2/user_transactions/"

Handler = Callable[[httpx.Request], httpx.Response]

# (exchange, path answered differently, handler, expected outcomes, is the gate call refusing the key)
CASES: list[tuple[str, str, Handler, dict[Item, Status], bool]] = [
    ("kraken", KRAKEN_GATE, kraken_key_revoked, {Item.KEY_KNOWN: FAIL, Item.SECRET_OK: UNKNOWN}, True),
    ("kraken", KRAKEN_GATE, kraken_wrong_secret, {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL}, True),
    ("kraken", KRAKEN_GATE, kraken_account_unconfirmed, {Item.ACTIVATED: FAIL}, True),
    ("kraken", "/0/private/Ledgers", kraken_permission_denied, {Item.READ_PERMISSION: FAIL}, False),
    ("kraken", KRAKEN_GATE, kraken_withdrawals_on, {Item.NO_TRADE_OR_WITHDRAW: FAIL}, False),
    ("kraken", KRAKEN_GATE, kraken_trading_on, {Item.NO_TRADE_OR_WITHDRAW: FAIL}, False),
    ("kraken", KRAKEN_GATE, kraken_ip_allowlist, {Item.NO_IP_RESTRICTION: FAIL}, False),
    ("kraken", "/0/private/Ledgers", kraken_no_ledger_entries, {Item.HAS_ACTIVITY: FAIL}, False),
    (
        "binance",
        BINANCE_GATE,
        binance_invalid_key_ip_or_permissions,
        {Item.KEY_KNOWN: UNKNOWN, Item.NO_IP_RESTRICTION: UNKNOWN, Item.READ_PERMISSION: UNKNOWN},
        True,
    ),
    ("binance", BINANCE_GATE, binance_bad_signature, {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL}, True),
    ("binance", BINANCE_GATE, binance_bad_key_format, {Item.KEY_KNOWN: FAIL}, True),
    (
        "binance",
        BINANCE_GATE,
        binance_withdrawals_on,
        {Item.NO_TRADE_OR_WITHDRAW: FAIL, Item.NO_IP_RESTRICTION: FAIL},
        False,
    ),
    ("binance_us", BINANCE_GATE, binance_ip_restricted, {Item.NO_IP_RESTRICTION: FAIL}, False),
    ("binance_us", BINANCE_GATE, binance_reading_off, {Item.READ_PERMISSION: FAIL}, False),
    (
        "coinbase",
        COINBASE_GATE,
        coinbase_unauthorized,
        {Item.KEY_KNOWN: UNKNOWN, Item.SECRET_OK: UNKNOWN, Item.NO_IP_RESTRICTION: UNKNOWN},
        True,
    ),
    ("coinbase", COINBASE_GATE, coinbase_missing_scopes, {Item.READ_PERMISSION: FAIL}, True),
    ("coinbase", COINBASE_GATE, coinbase_transfer_on, {Item.NO_TRADE_OR_WITHDRAW: FAIL}, False),
    ("kucoin", KUCOIN_GATE, kucoin_key_unknown, {Item.KEY_KNOWN: FAIL}, True),
    ("kucoin", KUCOIN_GATE, kucoin_wrong_signature, {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL}, True),
    ("kucoin", KUCOIN_GATE, kucoin_ip_not_allowed, {Item.NO_IP_RESTRICTION: FAIL}, True),
    ("kucoin", KUCOIN_GATE, kucoin_needs_more_permission, {Item.READ_PERMISSION: FAIL}, True),
    ("kucoin", KUCOIN_GATE, kucoin_user_frozen, {Item.ACTIVATED: FAIL}, True),
    ("kucoin", KUCOIN_GATE, kucoin_withdrawal_permission, {Item.NO_TRADE_OR_WITHDRAW: FAIL}, False),
    ("kucoin", KUCOIN_GATE, kucoin_ip_whitelist, {Item.NO_IP_RESTRICTION: FAIL}, False),
    ("okx", OKX_GATE, okx_key_unknown, {Item.KEY_KNOWN: FAIL}, True),
    ("okx", OKX_GATE, okx_invalid_sign, {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL}, True),
    ("okx", OKX_GATE, okx_ip_not_whitelisted, {Item.NO_IP_RESTRICTION: FAIL}, True),
    ("okx", OKX_GATE, okx_key_frozen, {Item.ACTIVATED: FAIL}, True),
    ("okx", OKX_GATE, okx_demo_key, {Item.KEY_KNOWN: FAIL}, True),
    ("okx", OKX_GATE, okx_trade_permission, {Item.NO_TRADE_OR_WITHDRAW: FAIL}, False),
    ("okx", OKX_GATE, okx_bound_ip, {Item.NO_IP_RESTRICTION: FAIL}, False),
    ("gemini", "/v1/roles", gemini_invalid_api_key, {Item.KEY_KNOWN: FAIL}, True),
    ("gemini", "/v1/roles", gemini_invalid_signature, {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL}, True),
    ("gemini", "/v1/roles", gemini_missing_role, {Item.READ_PERMISSION: FAIL}, True),
    ("gemini", "/v1/roles", gemini_fund_manager, {Item.NO_TRADE_OR_WITHDRAW: FAIL}, False),
    ("bitstamp", BITSTAMP_GATE, bitstamp_key_not_found, {Item.KEY_KNOWN: FAIL}, True),
    (
        "bitstamp",
        BITSTAMP_GATE,
        bitstamp_invalid_signature,
        {Item.KEY_KNOWN: PASS, Item.SECRET_OK: FAIL},
        True,
    ),
    ("bitstamp", BITSTAMP_GATE, bitstamp_ip_not_allowed, {Item.NO_IP_RESTRICTION: FAIL}, True),
    ("bitstamp", BITSTAMP_GATE, bitstamp_no_permission, {Item.READ_PERMISSION: FAIL}, True),
    ("bitstamp", BITSTAMP_GATE, bitstamp_no_transactions, {Item.HAS_ACTIVITY: FAIL}, False),
]


@pytest.mark.parametrize(
    ("exchange", "path", "handler", "expected", "refused"), CASES, ids=[case[2].__name__ for case in CASES]
)
async def test_exchange_answer_maps_to_the_right_item(
    exchange: str, path: str, handler: Handler, expected: dict[Item, Status], refused: bool
) -> None:
    await assert_answer_maps(exchange, path, handler, expected, refused)


@pytest.mark.parametrize(
    "exchange", ["kraken", "binance", "binance_us", "coinbase", "kucoin", "okx", "gemini", "bitstamp"]
)
async def test_valid_key_passes_every_item_the_exchange_reports(exchange: str) -> None:
    diagnosis = await diagnose(exchange, credentials(exchange), client=fake(exchange).client())
    assert diagnosis.failing() == ()
    assert diagnosis.unavailable is None
    assert diagnosis.outcome(Item.KEY_KNOWN).status is PASS
    assert diagnosis.outcome(Item.SECRET_OK).status is PASS
    assert diagnosis.outcome(Item.HAS_ACTIVITY).status is PASS


@pytest.mark.parametrize(
    ("exchange", "handler"), [("kucoin", kucoin_wrong_passphrase), ("okx", okx_wrong_passphrase)]
)
async def test_wrong_passphrase_fails_only_passphrase_ok(exchange: str, handler: Handler) -> None:
    gate = KUCOIN_GATE if exchange == "kucoin" else OKX_GATE
    exchange_fake = fake(exchange, {gate: handler})
    diagnosis = await diagnose(exchange, credentials(exchange), client=exchange_fake.client())
    assert [o.item for o in diagnosis.failing()] == [Item.PASSPHRASE_OK]
    assert diagnosis.outcome(Item.KEY_KNOWN).status is PASS
    assert len(exchange_fake.requests) == 1


async def test_kraken_refusal_behind_an_ip_allowlist_is_not_blamed_on_read_permission() -> None:
    exchange_fake = fake(
        "kraken", {KRAKEN_GATE: kraken_ip_allowlist, "/0/private/Ledgers": kraken_permission_denied}
    )
    diagnosis = await diagnose("kraken", credentials("kraken"), client=exchange_fake.client())
    assert [o.item for o in diagnosis.failing()] == [Item.NO_IP_RESTRICTION]
    assert diagnosis.outcome(Item.READ_PERMISSION).status is UNKNOWN


async def test_binance_minus_2015_is_ambiguous_so_nothing_is_called_a_bad_key() -> None:
    exchange_fake = fake("binance", {BINANCE_GATE: binance_invalid_key_ip_or_permissions})
    diagnosis = await diagnose("binance", credentials("binance"), client=exchange_fake.client())
    assert diagnosis.failing() == ()
    assert diagnosis.outcome(Item.KEY_KNOWN).raw_code == "-2015"
    assert "three" in (diagnosis.outcome(Item.KEY_KNOWN).detail or "")


async def test_coinbase_signs_for_the_host_in_use_and_never_sends_a_passphrase() -> None:
    exchange_fake = fake("coinbase")
    creds = credentials("coinbase", passphrase="not-needed")
    diagnosis = await diagnose("coinbase", creds, client=exchange_fake.client())
    assert diagnosis.outcome(Item.PASSPHRASE_OK).status is Status.NOT_APPLICABLE
    assert all("Bearer " in r.headers["Authorization"] for r in exchange_fake.requests)
