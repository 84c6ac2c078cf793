"""Test doubles for resync: `FakeHistorySource` (a paginated history in memory), a history generator, and
`snapshot`, what the user sees of a wallet, to compare before and after a sync."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice
from typing import Any

from bot.store.unit_of_work import SqlAlchemyUnitOfWork
from bot.types.credentials import Credentials
from bot.types.history import HistorySource, SourceTransaction, WalletRef

__all__ = ["FakeHistorySource", "FakeSourceFailure", "generate_history", "fake_sources", "snapshot"]


class FakeSourceFailure(Exception):
    """What a `FakeHistorySource` raises when told to fail halfway."""


class FakeHistorySource:
    """A history served in pages of `page_size`. `fail_after_pages=n` raises `error` after n pages were
    served, like an exchange that errors or times out halfway through."""

    def __init__(
        self,
        history: Iterable[SourceTransaction] | Callable[[], Iterable[SourceTransaction]],
        *,
        page_size: int = 100,
        fail_after_pages: int | None = None,
        error: Exception | None = None,
    ) -> None:
        self._history = history
        self.page_size = page_size
        self.fail_after_pages = fail_after_pages
        self.error = error or FakeSourceFailure("the exchange stopped answering halfway")
        self.calls: list[tuple[WalletRef, Credentials]] = []

    def _iterate(self) -> Iterator[SourceTransaction]:
        history = self._history() if callable(self._history) else self._history
        return iter(history)

    async def pages(
        self, wallet: WalletRef, credentials: Credentials
    ) -> AsyncIterator[Sequence[SourceTransaction]]:
        self.calls.append((wallet, credentials))
        items = self._iterate()
        served = 0
        while True:
            if self.fail_after_pages is not None and served >= self.fail_after_pages:
                raise self.error
            page = list(islice(items, self.page_size))
            if not page:
                return
            served += 1
            yield page


def fake_sources(source: HistorySource) -> Callable[[str], HistorySource]:
    """A source factory that answers `source` for every exchange."""
    return lambda _exchange: source


def generate_history(
    count: int,
    *,
    prefix: str = "tx",
    start: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc),
    amount_bump: Decimal = Decimal(0),
) -> Iterator[SourceTransaction]:
    """`count` plausible transactions, lazily (a 100,000-row history never sits in memory at once)."""
    kinds = ("deposit", "trade", "withdrawal", "staking_reward")
    assets = ("BTC", "ETH", "SOL", "USDC")
    for i in range(count):
        yield SourceTransaction(
            exchange_tx_id=f"{prefix}-{i:07d}",
            kind=kinds[i % len(kinds)],
            asset=assets[i % len(assets)],
            amount=Decimal(i % 1000 + 1) / Decimal(1000) + amount_bump,
            occurred_at=start + timedelta(minutes=i),
            fee=Decimal("0.0001") if i % 3 == 0 else None,
            fee_asset=assets[i % len(assets)] if i % 3 == 0 else None,
            raw={"id": f"{prefix}-{i:07d}", "seq": i},
        )


def snapshot(uow: SqlAlchemyUnitOfWork, wallet_id: int) -> list[tuple[Any, ...]]:
    """Every transaction of the wallet, its origin and source fields, with its edit: what a user sees."""
    with uow:
        edits = {tx.id: edit for tx, edit in uow.transactions.edits_for_wallet(wallet_id)}
        rows = []
        for tx in uow.transactions.for_wallet(wallet_id):
            edit = edits.get(tx.id)
            rows.append(
                (
                    tx.id,
                    tx.origin.value,
                    tx.exchange_tx_id,
                    tx.kind,
                    tx.asset,
                    tx.amount,
                    tx.fee,
                    tx.occurred_at,
                    tx.raw,
                    (edit.category, edit.note, edit.cost_basis) if edit else None,
                )
            )
        return sorted(rows, key=lambda row: row[0])
