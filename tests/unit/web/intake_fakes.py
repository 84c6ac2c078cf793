"""The store's in-memory unit of work, with the intake-token table (`bot.intake` needs it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.store import model
from tests.unit.store.store_fakes import FakeUnitOfWork, _Table


class FakeIntakeTokens(_Table):
    def by_hash(self, token_hash: str) -> model.IntakeToken | None:
        return next((t for t in self.rows if t.token_hash == token_hash), None)

    def claim(self, token_id: int, *, now: datetime) -> bool:
        token = self.get(token_id)
        if token is None or token.used_at is not None or token.expires_at <= now:
            return False
        token.used_at = now
        return True

    def release(self, token_id: int, *, claimed_at: datetime) -> bool:
        token = self.get(token_id)
        if token is None or token.used_at != claimed_at:
            return False
        token.used_at = None
        return True

    def delete_lapsed(self, before: datetime) -> int:
        kept = [t for t in self.rows if t.expires_at >= before]
        deleted = len(self.rows) - len(kept)
        self.rows = kept
        return deleted


class FakeIntakeUnitOfWork(FakeUnitOfWork):
    """`FakeUnitOfWork` plus intake tokens. `fail_store` makes the next credential flush raise (a database
    failure while storing)."""

    def __init__(self) -> None:
        super().__init__()
        self.intake_tokens = FakeIntakeTokens(self)  # type: ignore[assignment]
        self.fail_store = False

    def _table_for(self, item: Any) -> _Table:
        if isinstance(item, model.IntakeToken):
            return self.intake_tokens  # type: ignore[return-value]
        return super()._table_for(item)

    def flush(self) -> None:
        if self.fail_store and any(isinstance(item, model.Credential) for item in self.pending):
            self.pending.clear()
            raise RuntimeError("database went away")
        super().flush()

    def add_user_wallet(self, *, user_id: int, exchange: str) -> int:
        user = model.User(handle=f"user{user_id}", id=user_id)
        self.users.add(user)
        wallet = model.Wallet(user_id=user_id, exchange=exchange)
        self.wallets.add(wallet)
        self.flush()
        assert wallet.id is not None
        return wallet.id
