"""Per-exchange key guidance: the typed model and the loader of `exchanges.yml`.

The YAML holds the facts (true to `reference/update-api-key-article.txt` or `reference/exchanges.md`); this
module only types and checks them. Loading fails with `KnowledgeError` naming the entry and field, so a bad
edit shows up in the first test run rather than in a conversation.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, cast
from urllib.parse import urlsplit

import yaml

from bot.exchange_ids import DISPLAY_NAMES, EXCHANGE_IDS, ExchangeId

__all__ = [
    "DEFAULT_PATH",
    "KnowledgeError",
    "ApiPage",
    "Labels",
    "Permissions",
    "Passphrase",
    "IpRestriction",
    "ExchangeGuide",
    "load_guides",
    "guide_for",
]

# Relative to this file, so it works from the source tree and from an installed package alike.
DEFAULT_PATH: Final = Path(__file__).with_name("exchanges.yml")


class KnowledgeError(ValueError):
    """The knowledge file is malformed; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class ApiPage:
    """Where the user creates the key: in words, plus the exchange's key page or its own guide when known."""

    where: str
    settings_url: str | None
    help_url: str | None
    help_label: str | None


@dataclass(frozen=True)
class Labels:
    """What the exchange calls the two parts the user copies ("API key" / "private key")."""

    key: str
    secret: str


@dataclass(frozen=True)
class Permissions:
    """Read-only set-up: what to turn on, what must stay off (empty when the reference doesn't name them)."""

    turn_on: tuple[str, ...]
    leave_off: tuple[str, ...]
    note: str | None


@dataclass(frozen=True)
class Passphrase:
    """Whether a passphrase comes with each key, and what to save (Coinbase: the key name and private key)."""

    created: bool
    note: str | None


@dataclass(frozen=True)
class IpRestriction:
    """What the exchange calls its IP restriction; it must stay empty because syncing has no fixed IP."""

    setting: str
    note: str | None


@dataclass(frozen=True)
class ExchangeGuide:
    """Everything KeyMedic tells a user about making a working read-only key on one exchange."""

    id: ExchangeId
    name: str
    live_check: bool
    api_page: ApiPage
    create_note: str | None
    labels: Labels
    permissions: Permissions
    passphrase: Passphrase
    activation: str | None
    ip_restriction: IpRestriction
    activity: str | None
    key_format: tuple[str, ...]
    csv_export: str


def load_guides(path: Path | str | None = None) -> Mapping[ExchangeId, ExchangeGuide]:
    """Every exchange's guide, keyed by exchange id in `EXCHANGE_IDS` order. Read once per path, then cached;
    the mapping is read-only because it is shared."""
    return _load(Path(path).resolve() if path is not None else DEFAULT_PATH)


def guide_for(exchange_id: str) -> ExchangeGuide:
    """The guide for one exchange id; `KeyError` for an id that isn't in `bot.exchange_ids`."""
    guides = load_guides()
    if exchange_id not in guides:
        raise KeyError(f"no exchange guide for {exchange_id!r}")
    return guides[cast(ExchangeId, exchange_id)]


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> Mapping[ExchangeId, ExchangeGuide]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"{path}: can't be read ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: builds plain data only
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(data, list):
        raise KnowledgeError(f"{path.name}: expected a list of exchange entries")

    guides: dict[ExchangeId, ExchangeGuide] = {}
    for index, raw in enumerate(data):
        where = f"{path.name}: entry {index + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            where = f"{path.name}: entry {raw['id']!r}"
        guide = _Entry(raw, where).guide()
        if guide.id in guides:
            raise KnowledgeError(f"{where}: exchange id appears more than once")
        guides[guide.id] = guide
    missing = [exchange for exchange in EXCHANGE_IDS if exchange not in guides]
    if missing:
        raise KnowledgeError(f"{path.name}: no entry for {', '.join(missing)}")
    return MappingProxyType({exchange: guides[exchange] for exchange in EXCHANGE_IDS})


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys (plain YAML keeps the last one silently)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise KnowledgeError(f"duplicate key {key!r} on line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


_FIELDS: Final = frozenset(
    {
        "id",
        "name",
        "live_check",
        "api_page",
        "create_note",
        "labels",
        "permissions",
        "passphrase",
        "activation",
        "ip_restriction",
        "activity",
        "key_format",
        "csv_export",
    }
)


class _Entry:
    """Reads one raw entry, raising `KnowledgeError` that names the entry and the field."""

    def __init__(self, raw: object, where: str) -> None:
        self.where = where
        self.raw = self.mapping(raw, "", _FIELDS)

    def fail(self, field: str, problem: str) -> KnowledgeError:
        return KnowledgeError(f"{self.where}: {field} {problem}" if field else f"{self.where}: {problem}")

    def mapping(self, value: object, field: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, "must be a mapping")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail(field, f"has unknown field(s) {', '.join(unknown)}")
        missing = sorted(allowed - set(value))
        if missing:
            raise self.fail(field, f"is missing field(s) {', '.join(missing)}")
        return value

    def text(self, value: object, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "must be non-empty text")
        return " ".join(value.split())

    def optional_text(self, value: object, field: str) -> str | None:
        return None if value is None else self.text(value, field)

    def texts(self, value: object, field: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(field, "must be a list (possibly empty)")
        return tuple(self.text(item, f"{field}[{i}]") for i, item in enumerate(value))

    def flag(self, value: object, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, "must be true or false")
        return value

    def url(self, value: object, field: str) -> str | None:
        if value is None:
            return None
        url = self.text(value, field)
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc or " " in url:
            raise self.fail(field, f"must be an https URL, not {url!r}")
        return url

    def guide(self) -> ExchangeGuide:
        raw = self.raw
        exchange_id = self.text(raw["id"], "id")
        if exchange_id not in EXCHANGE_IDS:
            raise self.fail("id", f"{exchange_id!r} is not an exchange id of bot/exchange_ids.py")
        exchange: ExchangeId = exchange_id
        name = self.text(raw["name"], "name")
        if name != DISPLAY_NAMES[exchange]:
            raise self.fail("name", f"{name!r} differs from the display name {DISPLAY_NAMES[exchange]!r}")

        page = self.mapping(
            raw["api_page"], "api_page", frozenset({"where", "settings_url", "help_url", "help_label"})
        )
        help_url = self.url(page["help_url"], "api_page.help_url")
        help_label = self.optional_text(page["help_label"], "api_page.help_label")
        if (help_url is None) != (help_label is None):
            raise self.fail("api_page", "needs help_url and help_label together")

        labels = self.mapping(raw["labels"], "labels", frozenset({"key", "secret"}))
        permissions = self.mapping(
            raw["permissions"], "permissions", frozenset({"turn_on", "leave_off", "note"})
        )
        passphrase = self.mapping(raw["passphrase"], "passphrase", frozenset({"created", "note"}))
        created = self.flag(passphrase["created"], "passphrase.created")
        passphrase_note = self.optional_text(passphrase["note"], "passphrase.note")
        if created and passphrase_note is None:
            raise self.fail("passphrase.note", "must say what to save when a passphrase is created")
        ip = self.mapping(raw["ip_restriction"], "ip_restriction", frozenset({"setting", "note"}))

        return ExchangeGuide(
            id=exchange,
            name=name,
            live_check=self.flag(raw["live_check"], "live_check"),
            api_page=ApiPage(
                where=self.text(page["where"], "api_page.where"),
                settings_url=self.url(page["settings_url"], "api_page.settings_url"),
                help_url=help_url,
                help_label=help_label,
            ),
            create_note=self.optional_text(raw["create_note"], "create_note"),
            labels=Labels(
                key=self.text(labels["key"], "labels.key"),
                secret=self.text(labels["secret"], "labels.secret"),
            ),
            permissions=Permissions(
                turn_on=self.texts(permissions["turn_on"], "permissions.turn_on"),
                leave_off=self.texts(permissions["leave_off"], "permissions.leave_off"),
                note=self.optional_text(permissions["note"], "permissions.note"),
            ),
            passphrase=Passphrase(created=created, note=passphrase_note),
            activation=self.optional_text(raw["activation"], "activation"),
            ip_restriction=IpRestriction(
                setting=self.text(ip["setting"], "ip_restriction.setting"),
                note=self.optional_text(ip["note"], "ip_restriction.note"),
            ),
            activity=self.optional_text(raw["activity"], "activity"),
            key_format=self.texts(raw["key_format"], "key_format"),
            csv_export=self.text(raw["csv_export"], "csv_export"),
        )
