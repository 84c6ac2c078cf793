"""What the user pasted for an exchange API key: the key, its secret and, where the exchange has one, the
passphrase. The live test (`bot.exchanges`), the store (which encrypts it) and the resync all take it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.secret import Secret, mask

__all__ = ["Credentials"]


@dataclass(frozen=True, repr=False)
class Credentials:
    """What the user pasted. `api_key` is an identifier, not a secret, but it is still shown masked."""

    api_key: str
    api_secret: Secret
    passphrase: Secret | None = None
    # KuCoin's API key version ("2" or "3"), shown next to the key on KuCoin's API Management page.
    key_version: str | None = None

    def __repr__(self) -> str:
        return (
            f"Credentials(api_key={mask(self.api_key)!r}, api_secret={self.api_secret!r}, "
            f"passphrase={self.passphrase!r}, key_version={self.key_version!r})"
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Credentials:
        """Build from `{"api_key", "api_secret", "passphrase"?, "key_version"?}` (the CLI's stdin, the intake
        form). Raises `ValueError` naming the field, never its value."""

        def text(name: str, *, required: bool) -> str | None:
            value = data.get(name)
            if value is None or value == "":
                if required:
                    raise ValueError(f"{name} is missing")
                return None
            if isinstance(value, int) and not isinstance(value, bool) and name == "key_version":
                return str(value)
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            return value

        api_key = text("api_key", required=True)
        api_secret = text("api_secret", required=True)
        passphrase = text("passphrase", required=False)
        assert api_key is not None and api_secret is not None
        return cls(
            api_key=api_key,
            api_secret=Secret(api_secret),
            passphrase=Secret(passphrase) if passphrase is not None else None,
            key_version=text("key_version", required=False),
        )
