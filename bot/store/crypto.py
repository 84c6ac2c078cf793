"""Encryption at rest for credentials: AES-256-GCM with a key ring (DESIGN §5).

Every ciphertext is bound to its row by GCM's associated data (`credential_aad`): a ciphertext copied into
another wallet's row, or another version's, fails authentication instead of decrypting. Each record stores the
id of the key that sealed it, so keys rotate without downtime: the ring holds the new key (first, current) and
the old ones until `keymedic rotate-keys` has re-sealed everything.

Keys come from `KEYMEDIC_ENCRYPTION_KEYS` (`kid1:base64key,kid2:base64key`). A local run without it uses
`var/keys/encryption.keys`, created on first use readable by its owner only.

    CryptoError
    ├── KeyRingError       the configured keys are malformed or the key file is unsafe
    └── DecryptionError    a ciphertext did not authenticate (wrong row or key, tampered) or its key is gone
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.config import Settings

__all__ = [
    "CryptoError",
    "KeyRingError",
    "DecryptionError",
    "KeyRing",
    "Sealed",
    "credential_aad",
    "parse_key_ring",
    "format_key_ring",
    "new_key_entry",
    "key_file_path",
    "load_key_ring",
    "ensure_key_file",
    "write_key_file",
]

_NONCE_BYTES: Final = 12  # GCM's standard nonce; random per encryption (NIST SP 800-38D §8.2.2)
_KEY_BYTES: Final = 32  # AES-256
_KID_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class CryptoError(Exception):
    """Root of the encryption errors. Messages never contain key material or plaintext."""


class KeyRingError(CryptoError):
    """The configured keys cannot be used."""


class DecryptionError(CryptoError):
    """A ciphertext could not be opened."""


def credential_aad(*, wallet_id: int, user_id: int, version: int, field: str = "secrets") -> bytes:
    """The associated data that binds a credential ciphertext to its row."""
    return f"credential|{wallet_id}|{user_id}|{version}|{field}".encode()


@dataclass(frozen=True)
class Sealed:
    """A ciphertext and the id of the key that sealed it (nonce first, then ciphertext and tag)."""

    key_id: str
    blob: bytes

    def __repr__(self) -> str:
        return f"Sealed(key_id={self.key_id!r}, blob=<{len(self.blob)} bytes>)"


class KeyRing:
    """The data-encryption keys: the current one seals, any of them opens."""

    __slots__ = ("_keys", "_current")

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if current not in keys:
            raise KeyRingError("the current key id is not in the key ring")
        for kid, key in keys.items():
            if not _KID_PATTERN.match(kid):
                raise KeyRingError(f"key id {kid!r} must be 1-64 letters, digits, '.', '_' or '-'")
            if len(key) != _KEY_BYTES:
                raise KeyRingError(f"key {kid!r} must be {_KEY_BYTES} bytes (AES-256), got {len(key)}")
        self._keys = dict(keys)
        self._current = current

    def __repr__(self) -> str:
        return f"KeyRing(current={self._current!r}, key_ids={sorted(self._keys)!r})"

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        """Encrypt with the current key."""
        nonce = os.urandom(_NONCE_BYTES)
        blob = nonce + AESGCM(self._keys[self._current]).encrypt(nonce, plaintext, aad)
        return Sealed(self._current, blob)

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        """Decrypt with the key that sealed it. Raises `DecryptionError` when it does not authenticate."""
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise DecryptionError(f"key {sealed.key_id!r} is not in the key ring (was it removed too early?)")
        nonce, body = sealed.blob[:_NONCE_BYTES], sealed.blob[_NONCE_BYTES:]
        try:
            return AESGCM(key).decrypt(nonce, body, aad)
        except InvalidTag:
            # Deliberately vague: the same error for a moved ciphertext, a wrong key and tampering.
            raise DecryptionError("ciphertext does not authenticate for this record") from None


def parse_key_ring(text: str) -> KeyRing:
    """Parse `kid1:base64key,kid2:base64key` (commas or newlines); the first key is the current one."""
    parts = (part.strip() for part in re.split(r"[,\n]", text))
    entries = [part for part in parts if part and not part.startswith("#")]
    if not entries:
        raise KeyRingError("no encryption keys configured")
    keys: dict[str, bytes] = {}
    for entry in entries:
        kid, sep, encoded = entry.partition(":")
        if not sep:
            raise KeyRingError("each key must look like 'kid:base64key'")
        kid = kid.strip()
        if kid in keys:
            raise KeyRingError(f"key id {kid!r} appears twice")
        try:
            keys[kid] = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            raise KeyRingError(f"key {kid!r} is not valid base64") from None
    return KeyRing(keys, current=next(iter(keys)))


def new_key_entry(kid: str | None = None) -> str:
    """A fresh `kid:base64key` entry from the OS's CSPRNG."""
    kid = kid or "k" + secrets.token_hex(4)
    return f"{kid}:{base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()}"


def format_key_ring(entries: Iterable[str]) -> str:
    return "".join(f"{entry}\n" for entry in entries)


def key_file_path(settings: Settings) -> Path:
    return settings.var_dir / "keys" / "encryption.keys"


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyRingError(f"{path} is readable by other users; run `chmod 600 {path}` (or replace the keys)")


def write_key_file(path: Path, content: str, *, replace: bool) -> bool:
    """Write a key file that is owner-only from its first byte.

    The file is created under a temporary name with `O_EXCL` and mode 0600 (the umask can only remove bits),
    filled and fsynced, then moved into place: `link` when it must not exist yet (two processes racing to
    create it must not end up with different keys; the loser returns False and reads the winner's), `replace`
    when rotating. Returns True when this call's content is now in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def ensure_key_file(path: Path) -> None:
    """Create the local key file with one fresh key unless it exists."""
    if not path.exists():
        write_key_file(path, format_key_ring([new_key_entry()]), replace=False)


def load_key_ring(settings: Settings) -> KeyRing:
    """The key ring from `KEYMEDIC_ENCRYPTION_KEYS`, else from the local key file (created when missing)."""
    if settings.encryption_keys:
        return parse_key_ring(settings.encryption_keys)
    if settings.production:
        # Every process would make its own key: one pod could not open what another sealed, and a restart
        # would lose every credential (bot/production.py refuses this at start already).
        raise KeyRingError("KEYMEDIC_ENCRYPTION_KEYS is not set; production never generates encryption keys")
    path = key_file_path(settings)
    ensure_key_file(path)
    _check_private(path)
    return parse_key_ring(path.read_text(encoding="ascii"))
