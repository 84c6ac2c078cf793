"""Issue 7: no bot message contains removal steps unless support approved removal on the ticket.

Not one story but every message the conversation can produce: each response of domain.yml, each text the
actions write themselves, each reply of bot/assistant/replies.py — the live-test replies built from real
diagnoses of every sandbox exchange and scenario — and each knowledge text, for every exchange id. Exactly
one reply may hold removal steps, `removal_walkthrough_reply`, and it is called in one place only: inside
`ActionRemovalImpact`'s branch for a ticket with removal approved.

`removal_steps` is also what tests/e2e/test_handoff_flow.py checks the real conversation's replies with.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.assistant import SyncReport
from bot.assistant import replies as replies_module
from bot.assistant.replies import (
    checklist_fix,
    csv_backup_reply,
    exchange_title,
    key_check_reply,
    removal_impact_reply,
    removal_walkthrough_reply,
    removal_warning_reply,
    sync_report_reply,
    sync_started_reply,
)
from bot.config import PROJECT_ROOT
from bot.demo import IN_PROCESS_SANDBOX, sandbox_transport
from bot.diagnosis.service import diagnose, reset_rate_limits
from bot.exchange_ids import EXCHANGE_IDS
from bot.knowledge import api_page_link, checklist_questions, csv_backup_steps, guide_for, new_key_steps
from bot.sandbox.scenarios import SANDBOX_EXCHANGES, credentials_for, scenarios_for
from bot.store.model import RemovalImpact
from bot.types.credentials import Credentials
from bot.types.diagnosis import Item

# What removal *steps* look like, sentence by sentence: a removal verb whose object is the connection (not an
# API key, a whitelist or an IP restriction), together with where to click or what to do next in the app.
# Warnings ("removing Kraken would delete 8 edits") name no place to click, so they pass.
_NAMES = "|".join(re.escape(exchange_title(e)) for e in EXCHANGE_IDS)
_REMOVE_CONNECTION = re.compile(
    r"\b(?:remove|removing|delete|deleting|disconnect|disconnecting|unlink)\s+(?:\S+\s+){0,3}?"
    rf"(?:wallets?|exchanges?|connections?|integrations?|it|{_NAMES})\b",
    re.IGNORECASE,
)
_WHERE = re.compile(
    r"\b(page|menu|click|tap|select|button|go to|open)\b|\[\.\.\.\]|\badd it again\b|\bre-?add it\b",
    re.IGNORECASE,
)


def removal_steps(text: str) -> list[str]:
    """The sentences of `text` that walk the user through removing an exchange connection."""
    sentences = re.split(r"(?<=[.!?:;])\s+|\n+", text)
    return [s for s in sentences if _REMOVE_CONNECTION.search(s) and _WHERE.search(s)]


# -- every message ---------------------------------------------------------------------------------------

IMPACTS = (RemovalImpact(0, 0, 0, 0), RemovalImpact(3, 2, 1, 2), RemovalImpact(1, 0, 0, 0))


def domain_texts() -> Iterator[tuple[str, str]]:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text())
    for name, variants in domain["responses"].items():
        for variant in variants:
            for exchange in EXCHANGE_IDS:  # slots such as {exchange_name} filled with every exchange
                text = str(variant.get("text", "")).replace("{exchange_name}", exchange_title(exchange))
                yield f"domain:{name}", text
            for button in variant.get("buttons", []):
                yield f"domain:{name}:button", str(button["title"])


def action_literals() -> Iterator[tuple[str, str]]:
    """Every string the actions hold (an f-string with its placeholders as `{}`): their own messages."""
    for path in sorted((PROJECT_ROOT / "actions").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
                yield f"{path.name}:{node.lineno}", "".join(str(p) for p in parts)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield f"{path.name}:{node.lineno}", node.value


def knowledge_texts() -> Iterator[tuple[str, str]]:
    for exchange in EXCHANGE_IDS:
        guide = guide_for(exchange)
        for step in new_key_steps(guide):
            yield f"new_key_steps:{exchange}", step
        for question in checklist_questions(guide, list(Item)):
            yield f"checklist_questions:{exchange}", question.text
        for step in csv_backup_steps(guide):
            yield f"csv_backup_steps:{exchange}", step
        link = api_page_link(guide)
        if link is not None:
            yield f"api_page_link:{exchange}", link[0]
        for hint in guide.key_format:
            yield f"key_format:{exchange}", hint
        for item in Item:
            if item in {group[0] for group in _checklist_heads()}:
                yield (
                    f"checklist_fix:{exchange}:{item.value}",
                    checklist_fix(
                        item, name=guide.name, key_label=guide.labels.key, secret_label=guide.labels.secret
                    ),
                )


def faq_texts() -> Iterator[tuple[str, str]]:
    """Every FAQ answer for every exchange and none, the search's passages, and the fallback's buttons."""
    from bot.knowledge import answer, load_faq
    from bot.knowledge.fallback import FLOW_TITLES
    from bot.knowledge.search import passages

    for topic in load_faq().values():
        yield f"faq_title:{topic.topic}", topic.title
        yield f"faq:{topic.topic}", answer(topic.topic)
        for exchange in EXCHANGE_IDS:
            yield f"faq:{topic.topic}:{exchange}", answer(topic.topic, exchange)
    for index, passage in enumerate(passages()):
        yield f"search_passage:{index}", passage.text
    for intent, title in FLOW_TITLES.items():
        yield f"fallback_title:{intent}", title


def _checklist_heads() -> tuple[tuple[Item, ...], ...]:
    from bot.knowledge import CHECKLIST_ORDER

    return CHECKLIST_ORDER


def reply_texts() -> Iterator[tuple[str, str]]:
    """Every reply of bot/assistant/replies.py except the approved walkthrough and the live-test reply."""
    yield "removal_warning_reply", removal_warning_reply()
    yield "csv_backup_reply", csv_backup_reply()
    for exchange in EXCHANGE_IDS:
        yield f"sync_started_reply:{exchange}", sync_started_reply(exchange, "****abcd")
        for status, error in (
            ("queued", None),
            ("running", None),
            ("failed", "HTTP 503"),
            ("succeeded", None),
        ):
            report = SyncReport(7, status, 3, 1, 36, error)
            yield f"sync_report_reply:{exchange}:{status}", sync_report_reply(exchange, report)
        yield (
            f"sync_report_reply:{exchange}:empty",
            sync_report_reply(exchange, SyncReport(7, "succeeded", 0, 0, 0, None)),
        )
        for impact in IMPACTS:
            yield f"removal_impact_reply:{exchange}:{impact.total}", removal_impact_reply(exchange, impact)


async def live_test_texts() -> list[tuple[str, str]]:
    """`key_check_reply` for a real diagnosis of every sandbox exchange and scenario (and a badly copied
    key), the sandbox answering in-process."""
    client = httpx.AsyncClient(transport=sandbox_transport())
    texts = []
    try:
        for exchange in SANDBOX_EXCHANGES:
            fields = dict(credentials_for(exchange, "valid"))
            badly_copied = {
                **fields,
                "api_key": " " + fields["api_key"][:-3],
                "api_secret": fields["api_secret"] + " x",
            }
            cases = [(s, dict(credentials_for(exchange, s))) for s in scenarios_for(exchange)] + [
                ("typo", badly_copied)
            ]
            for scenario, credentials in cases:
                reset_rate_limits()  # the anti-oracle limit would otherwise stop the run after a few tests
                diagnosis = await diagnose(
                    exchange, Credentials.from_mapping(credentials), client=client, deadline_s=2.0
                )
                texts.append((f"key_check_reply:{exchange}:{scenario}", key_check_reply(diagnosis)))
    finally:
        await client.aclose()
        reset_rate_limits()
    return texts


@pytest.fixture
def in_process_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    for exchange in SANDBOX_EXCHANGES:
        monkeypatch.setenv(f"KEYMEDIC_{exchange.upper()}_URL", f"{IN_PROCESS_SANDBOX}/{exchange}")


# -- the checks ------------------------------------------------------------------------------------------


def test_the_detector_recognises_removal_steps_and_lets_warnings_through() -> None:
    walkthrough = removal_walkthrough_reply("kraken", RemovalImpact(3, 2, 1, 2))
    assert removal_steps(walkthrough)
    for steps in (
        "Go to Settings, open Wallets and click Delete next to Coinbase.",
        "To start over, disconnect the exchange from the integrations page and connect it again.",
        "Select KuCoin on the Wallets page and remove it, then add it again.",
    ):
        assert removal_steps(steps), steps
    for warning in (
        removal_warning_reply(),
        removal_impact_reply("kraken", RemovalImpact(3, 2, 1, 2)),
        "Remove the IP restriction from the key, or create a new key without one.",
        "Open the API settings of your Kraken account and add a new key.",
    ):
        assert not removal_steps(warning), warning


async def test_no_message_but_the_approved_walkthrough_contains_removal_steps(
    in_process_sandbox: None,
) -> None:
    messages = [
        *domain_texts(),
        *action_literals(),
        *knowledge_texts(),
        *faq_texts(),
        *reply_texts(),
        *await live_test_texts(),
    ]
    assert len(messages) > 500  # every exchange and scenario really was rendered
    live = {source.split(":")[1] for source, _ in messages if source.startswith("key_check_reply:")}
    assert live == set(SANDBOX_EXCHANGES)
    offending = {source: removal_steps(text) for source, text in messages if removal_steps(text)}
    assert offending == {}


def test_every_reply_function_is_rendered_here() -> None:
    # A reply added to replies.py without being added to this check would slip through it.
    rendered = {
        "exchange_title",  # a name, used inside the others
        "needs_checklist",  # a yes/no, not a text
        "key_check_reply",
        "sync_started_reply",
        "sync_report_reply",
        "removal_impact_reply",
        "removal_warning_reply",
        "csv_backup_reply",
        "removal_walkthrough_reply",  # the approved one, checked below
    }
    public = {
        name
        for name, value in vars(replies_module).items()
        if callable(value) and value.__module__ == replies_module.__name__ and not name.startswith("_")
    }
    assert public - {"checklist_fix"} == rendered


def _calls_of(name: str, tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def test_the_walkthrough_is_sent_only_when_the_ticket_has_removal_approved() -> None:
    sources: dict[Path, ast.AST] = {
        path: ast.parse(path.read_text())
        for folder in ("actions", "bot", "channels")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
    }
    callers = {
        path.relative_to(PROJECT_ROOT).as_posix(): _calls_of("removal_walkthrough_reply", tree)
        for path, tree in sources.items()
    }
    callers = {path: calls for path, calls in callers.items() if calls}
    assert list(callers) == ["actions/removal.py"] and len(callers["actions/removal.py"]) == 1

    tree = sources[PROJECT_ROOT / "actions" / "removal.py"]
    guarded: list[Any] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "removal_approved" in ast.unparse(node.test):
            guarded += [
                call for statement in node.body for call in _calls_of("removal_walkthrough_reply", statement)
            ]
    assert len(guarded) == 1, "removal steps must sit inside the `if …removal_approved(…)` branch"
