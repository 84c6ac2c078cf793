"""Fakes for the diagnosis tests: well-formed credentials per exchange and exchange answers served by
`httpx.MockTransport` (no sockets)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.types.credentials import Credentials
from bot.types.diagnosis import Item, Status

# A secret that must never show up in an exception, a log line or the CLI's output.
CANARY = "CANARYcanary1234567890CANARYcanary12345678"

_PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    .decode()
)

CREDENTIALS: dict[str, dict[str, str]] = {
    "kraken": {"api_key": "K" * 52 + "abcd", "api_secret": base64.b64encode(b"k" * 64).decode()},
    "binance": {"api_key": "B" * 60 + "abcd", "api_secret": "s" * 64},
    "binance_us": {"api_key": "U" * 60 + "abcd", "api_secret": "s" * 64},
    "coinbase": {
        "api_key": "organizations/11111111-2222-4333-8444-555555555555/apiKeys/"
        "66666666-7777-4888-9999-000000000000",
        "api_secret": _PEM,
    },
    "kucoin": {
        "api_key": "5c2db93503aa674c74a31734",
        "api_secret": "f03a5284-5c39-4aaa-9b20-dea10bdcf8e3",
        "passphrase": "Passphrase-1",
    },
    "okx": {
        "api_key": "1f5b6c0e-1111-4222-8333-444455556666",
        "api_secret": "22582BD0CFF14C41EDBF1AB98506286D",
        "passphrase": "Passphrase-1",
    },
    "gemini": {"api_key": "account-5kjcLRsjVGNtVQ2uaGIE", "api_secret": "34p8cbsNmcg4V2LDjS5JPXZNSYPR"},
    "bitstamp": {
        "api_key": "eBm2jPdnLvBmAn3z5oA8DLWkwdhsWFsb",
        "api_secret": "Zr4sQx2Lk9Pm7Nw3Vb8Ct6Ya1Ud5Ge0H",
    },
    "bybit": {"api_key": "XpR3mK9vLq2WzT7bNa", "api_secret": "Hq8Zt2Lm5Rk9Wv3Xp7Ns4Yb6Dc1Fg0Jh2Ka5"},
    "gate_io": {"api_key": "0123456789abcdef0123456789abcdef", "api_secret": "ab" * 32},
    "crypto_com": {"api_key": "Ab3dEf6hIj9kLm2nOp5qRs", "api_secret": "Tu8vWx1yZa4bCd7eFg0hIj"},
    "bitfinex": {"api_key": "A" * 39 + "abcd", "api_secret": "S" * 39 + "wxyz"},
}


def credentials(exchange: str, **changes: str) -> Credentials:
    return Credentials.from_mapping({**CREDENTIALS[exchange], **changes})


Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeExchange:
    """Answers by API path (`/0/private/Ledgers`); counts what it was asked."""

    routes: dict[str, Answer]
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get(request.url.path)
        if answer is None:
            return httpx.Response(404, json={"error": "no route"})
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def ok(body: object, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}
    )


# What each exchange answers for a valid read-only key with history: the probe runs to the end.
VALID: dict[str, dict[str, Answer]] = {
    "kraken": {
        "/0/private/GetApiKeyInfo": ok(
            {
                "error": [],
                "result": {"permissions": ["query-funds", "query-ledger-entries"], "ipAllowlist": []},
            }
        ),
        "/0/private/Ledgers": ok({"error": [], "result": {"ledger": {"L1": {}}, "count": 1}}),
    },
    "binance": {
        "/sapi/v1/account/apiRestrictions": ok(
            {
                "ipRestrict": False,
                "enableReading": True,
                "enableWithdrawals": False,
                "enableSpotAndMarginTrading": False,
            }
        ),
        "/api/v3/account": ok({"balances": [{"asset": "BTC", "free": "0.5", "locked": "0"}]}),
        "/sapi/v1/capital/deposit/hisrec": ok([]),
    },
    "coinbase": {
        "/api/v3/brokerage/key_permissions": ok(
            {"can_view": True, "can_trade": False, "can_transfer": False}
        ),
        "/api/v3/brokerage/accounts": ok({"accounts": [{"available_balance": {"value": "1.0"}}]}),
        "/api/v3/brokerage/orders/historical/fills": ok({"fills": []}),
    },
    "kucoin": {
        "/api/v1/user/api-key": ok({"code": "200000", "data": {"permission": "General", "ipWhitelist": ""}}),
        "/api/v1/accounts": ok({"code": "200000", "data": [{"balance": "1.5"}]}),
        "/api/v1/accounts/ledgers": ok({"code": "200000", "data": {"totalNum": 0, "items": []}}),
    },
    "okx": {
        "/api/v5/account/config": ok({"code": "0", "msg": "", "data": [{"perm": "read_only", "ip": ""}]}),
        "/api/v5/account/balance": ok({"code": "0", "msg": "", "data": [{"details": [{"eq": "2"}]}]}),
        "/api/v5/account/bills-archive": ok({"code": "0", "msg": "", "data": []}),
    },
    "gemini": {
        "/v1/roles": ok({"isAuditor": True, "isTrader": False, "isFundManager": False}),
        "/v1/transfers": ok([{"type": "Deposit"}]),
    },
    "bitstamp": {"/api/v2/user_transactions/": ok([{"id": 1}])},
    "bybit": {
        "/v5/user/query-api": ok(
            {
                "retCode": 0,
                "retMsg": "",
                "result": {"readOnly": 1, "permissions": {"Wallet": []}, "ips": ["*"], "expiredAt": ""},
            }
        ),
        "/v5/account/wallet-balance": ok(
            {"retCode": 0, "retMsg": "OK", "result": {"list": [{"coin": [{"walletBalance": "1.5"}]}]}}
        ),
        "/v5/account/transaction-log": ok({"retCode": 0, "retMsg": "OK", "result": {"list": []}}),
    },
    "gate_io": {
        "/api/v4/account/detail": ok({"user_id": 1, "ip_whitelist": [], "key": {"mode": 1}}),
        "/api/v4/account/main_keys": ok(
            [{"key": "0123****cdef", "state": 1, "perms": [{"name": "spot", "read_only": True}]}]
        ),
        "/api/v4/spot/accounts": ok([{"currency": "BTC", "available": "0.5", "locked": "0"}]),
        "/api/v4/wallet/deposits": ok([]),
    },
    "crypto_com": {
        "/exchange/v1/private/user-balance": ok(
            {
                "id": 1,
                "code": 0,
                "result": {"data": [{"total_cash_balance": "12.5", "position_balances": []}]},
            }
        ),
        "/exchange/v1/private/get-trades": ok({"id": 2, "code": 0, "result": {"data": []}}),
    },
    "bitfinex": {
        "/v2/auth/r/permissions": ok(
            [["account", 1, 0], ["history", 1, 0], ["wallets", 1, 0], ["orders", 1, 0], ["withdraw", 0, 0]]
        ),
        "/v2/auth/r/wallets": ok([["exchange", "BTC", 0.5, 0, 0.5]]),
        "/v2/auth/r/ledgers/hist": ok([]),
    },
}
VALID["binance_us"] = VALID["binance"]


def fake(exchange: str, overrides: dict[str, Answer] | None = None) -> FakeExchange:
    """The valid exchange, with some API paths answering differently."""
    return FakeExchange({**VALID[exchange], **(overrides or {})})


async def assert_answer_maps(
    exchange: str, path: str, answer: Answer, expected: dict[Item, Status], refused: bool
) -> None:
    """Diagnose `exchange`'s test key with `path` answering `answer`: the expected items come out as
    expected, every failing item has a fix, every unknown one says why, and (`refused`) an authentication
    error is asked once and ends the probe, with the exchange's raw code on the items it decided."""
    from bot.diagnosis import diagnose

    exchange_fake = fake(exchange, {path: answer})
    diagnosis = await diagnose(exchange, credentials(exchange), client=exchange_fake.client())

    assert diagnosis.unavailable is None
    for item, status in expected.items():
        assert diagnosis.outcome(item).status is status, item
    failing = {o.item for o in diagnosis.failing()}
    assert failing == {item for item, status in expected.items() if status is Status.FAIL}
    for outcome in diagnosis.failing():
        assert outcome.fix, outcome.item
    for outcome in diagnosis.unknown():
        assert outcome.detail, outcome.item  # "can't tell" always says why
    if refused:
        assert exchange_fake.paths() == [path]
        assert all(o.raw_code for o in diagnosis.items if o.item in expected and o.status is not Status.PASS)
