"""Per-exchange knowledge behind the bot's guidance: how to make a working read-only key on each exchange.

The facts live in `exchanges.yml` (one entry per id of `bot.exchange_ids`), each true to the help article or
to `reference/exchanges.md`; `load_guides` types and checks them, and the renderers turn a guide into the
steps, checklist questions, CSV backup and link button the actions show. Framework-free: no rasa import.

    guide = guide_for("kraken")
    new_key_steps(guide)                                      # where, then the article's rules
    checklist_questions(guide, [Item.NO_IP_RESTRICTION])      # only what a live test left open
"""

from bot.knowledge._guides import (
    DEFAULT_PATH,
    ApiPage,
    ExchangeGuide,
    IpRestriction,
    KnowledgeError,
    Labels,
    Passphrase,
    Permissions,
    guide_for,
    load_guides,
)
from bot.knowledge._render import (
    CHECKLIST_ORDER,
    ChecklistQuestion,
    api_page_link,
    checklist_questions,
    csv_backup_steps,
    new_key_steps,
)

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
    "CHECKLIST_ORDER",
    "ChecklistQuestion",
    "new_key_steps",
    "checklist_questions",
    "csv_backup_steps",
    "api_page_link",
]
