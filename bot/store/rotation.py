"""Key rotation: re-seal every credential with the key ring's current key, a small batch per transaction, so
the service keeps working meanwhile (old key ids stay readable until the last batch is done)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.store.crypto import Sealed, credential_aad
from bot.store.unit_of_work import AbstractUnitOfWork

__all__ = ["RotationReport", "rotate_keys"]


@dataclass(frozen=True)
class RotationReport:
    current_key_id: str
    resealed: int
    batches: int
    credentials_by_key_id: dict[str, int]

    @property
    def done(self) -> bool:
        """No credential is sealed with an older key any more."""
        return set(self.credentials_by_key_id) <= {self.current_key_id}


def rotate_keys(
    uow: AbstractUnitOfWork, *, batch_size: int = 100, max_batches: int | None = None
) -> RotationReport:
    """Re-seal credentials sealed with older keys using the current key. Safe to stop (`max_batches`) and
    run again."""
    current = uow.keys.current_key_id
    after_id = 0
    resealed = batches = 0
    while max_batches is None or batches < max_batches:
        with uow:
            ids = uow.credentials.ids_to_reseal(current, after_id=after_id, limit=batch_size)
            if not ids:
                break
            # Locked and re-read: a credential retired or re-sealed since the id query is skipped.
            for credential in uow.credentials.lock_many(ids):
                if credential.ciphertext is None or credential.key_id is None or credential.key_id == current:
                    continue
                wallet = uow.wallets.get(credential.wallet_id)
                assert wallet is not None and wallet.id is not None
                aad = credential_aad(wallet_id=wallet.id, user_id=wallet.user_id, version=credential.version)
                plaintext = uow.keys.open(Sealed(credential.key_id, credential.ciphertext), aad)
                sealed = uow.keys.seal(plaintext, aad)
                credential.key_id, credential.ciphertext = sealed.key_id, sealed.blob
                resealed += 1
            uow.commit()
            batches += 1
            after_id = ids[-1]
    with uow:
        by_key = uow.credentials.count_by_key_id()
    return RotationReport(current, resealed, batches, by_key)
