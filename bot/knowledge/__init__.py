"""Per-exchange knowledge behind the bot's guidance: how to make a working read-only key on each exchange.

The facts live in `exchanges.yml` (one entry per id of `bot.exchange_ids`), each true to the help article or
to `reference/exchanges.md`; `load_guides` types and checks them, and the renderers turn a guide into the
steps, checklist questions, CSV backup and link button the actions show. Framework-free: no rasa import.

    guide = guide_for("kraken")
    new_key_steps(guide)                                      # where, then the article's rules
    checklist_questions(guide, [Item.NO_IP_RESTRICTION])      # only what a live test left open
    answer("passphrase", "kucoin")                            # an FAQ answer, told for KuCoin

The FAQ (`faq.yml`, `_faq.py`) answers the questions people ask; `bot.knowledge.search` finds the closest
answer when no intent is confident.
"""

from bot.knowledge._faq import (
    FAQ_PATH,
    FaqTopic,
    answer,
    depends_on_exchange,
    faq_topics,
    is_retrieval_intent,
    load_faq,
    one_faq_reading,
    removal_wins_a_close_call,
    topic_for_intent,
)
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
    "one_faq_reading",
    "removal_wins_a_close_call",
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
    "FAQ_PATH",
    "FaqTopic",
    "load_faq",
    "faq_topics",
    "topic_for_intent",
    "answer",
    "depends_on_exchange",
    "is_retrieval_intent",
]
