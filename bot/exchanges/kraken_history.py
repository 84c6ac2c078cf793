"""Kraken history: the ledger, `POST /0/private/Ledgers` (reference/exchanges.md §3 "History").

Pagination: `ofs` (an offset), 50 entries a page, newest first, `count` = the total. KeyMedic reads from
`ofs=0` until a page is empty or the offset reaches `count`. Entries that arrive meanwhile push older ones to
higher offsets, so an entry may be read twice (the merge keeps one), never skipped.

One entry per asset movement (a trade is two entries sharing `refid`); its id, the key of `result.ledger`
(`L4UESK-KG3EQ-UFO4T5`), is stable, so it is the exchange transaction id. Kraken's asset codes (`XXBT`,
`ZUSD`) become the usual tickers; the original stays in `raw`.

Nonce: `KrakenAuth`'s milliseconds, strictly increasing in the process, pages one after the other (§0.2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from bot.exchanges._history import HistoryReader, Page, decimal, fee_or_none, from_s, shape_error
from bot.exchanges._http import Session
from bot.exchanges.kraken import KrakenAuth, KrakenClient, decode
from bot.types.credentials import Credentials
from bot.types.history import SourceTransaction

__all__ = ["KrakenHistory", "kraken_asset", "ledger_transaction"]

PAGE_SIZE: Final = 50

# Kraken's legacy four-letter codes (X = crypto, Z = fiat) and its own name for bitcoin and dogecoin.
_ASSETS: Final[dict[str, str]] = {
    "XXBT": "BTC",
    "XBT": "BTC",
    "XXDG": "DOGE",
    "XDG": "DOGE",
    "XETH": "ETH",
    "XETC": "ETC",
    "XLTC": "LTC",
    "XXRP": "XRP",
    "XXLM": "XLM",
    "XXMR": "XMR",
    "XZEC": "ZEC",
    "XREP": "REP",
    "XMLN": "MLN",
    "ZUSD": "USD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZCAD": "CAD",
    "ZJPY": "JPY",
    "ZAUD": "AUD",
    "ZCHF": "CHF",
}

_KINDS: Final[dict[str, str]] = {
    "trade": "trade",
    "spend": "trade",
    "receive": "trade",
    "sale": "trade",
    "deposit": "deposit",
    "withdrawal": "withdrawal",
    "transfer": "transfer",
    "staking": "staking",
    "earn": "staking",
    "dividend": "reward",
    "credit": "reward",
    "margin": "margin",
    "rollover": "margin",
    "settled": "margin",
    "adjustment": "adjustment",
}


def kraken_asset(code: str) -> str:
    """`XXBT` → `BTC`, `ZUSD` → `USD`, `ETH2.S` stays; staking suffixes (`.S`, `.M`, `.F`) are kept."""
    name, dot, suffix = code.partition(".")
    return _ASSETS.get(name, name) + dot + suffix


def ledger_transaction(ledger_id: str, entry: Mapping[str, Any]) -> SourceTransaction:
    """One ledger entry as a source transaction."""
    asset = kraken_asset(str(entry.get("asset", "")))
    if not asset:
        raise shape_error("Kraken", "a ledger entry")
    fee = fee_or_none(entry.get("fee"), "Kraken")
    return SourceTransaction(
        exchange_tx_id=ledger_id,
        kind=_KINDS.get(str(entry.get("type", "")), "other"),
        asset=asset,
        amount=decimal(entry.get("amount"), "Kraken"),
        occurred_at=from_s(entry.get("time")),
        fee=fee,
        fee_asset=asset if fee is not None else None,
        raw={"id": ledger_id, **entry},
    )


class KrakenHistory(HistoryReader):
    exchange = "kraken"
    client_class = KrakenClient

    async def read(self, session: Session, credentials: Credentials) -> AsyncIterator[Page]:
        auth = KrakenAuth(credentials.api_key, credentials.api_secret, session.prefix)
        offset = 0
        while True:
            result = await session.call(
                "POST", "/0/private/Ledgers", auth=auth, decode=decode, data={"ofs": str(offset)}
            )
            ledger = result.get("ledger")
            if not isinstance(ledger, dict) or not all(isinstance(e, dict) for e in ledger.values()):
                raise shape_error("Kraken", "Ledgers")
            yield [ledger_transaction(str(ledger_id), entry) for ledger_id, entry in ledger.items()]
            offset += len(ledger)
            count = result.get("count")
            if not ledger or (isinstance(count, int) and offset >= count):
                return
