"""What the widget shows after a reload, rebuilt from a tracker's events (`bot.web.widget.history`)."""

from __future__ import annotations

from typing import Any

from bot.web.widget.history import history_entries, quick_replies


def _user(text: str, ts: float, **metadata: Any) -> dict[str, Any]:
    return {"event": "user", "text": text, "timestamp": ts, "metadata": metadata, "parse_data": {}}


def _bot(text: str | None, ts: float, data: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": ts, "data": data or {}, "metadata": metadata}


def test_the_conversation_comes_back_in_order_with_what_the_user_saw() -> None:
    events = [
        {"event": "action", "name": "action_session_start", "timestamp": 1.0},
        {"event": "session_started", "timestamp": 1.1},
        _user("my kraken key is broken", 2.0),
        _bot(
            "Which one?",
            3.0,
            {"buttons": [{"title": "Kraken ****WXYZ", "payload": '/inform{"wallet_id":"1"}'}]},
        ),
        _user('/inform{"wallet_id":"1"}', 4.0, keymedic_display="Kraken ****WXYZ"),
        {"event": "slot", "name": "wallet_id", "value": "1", "timestamp": 4.1},
        _user("EXTERNAL: ask_sync_status", 5.0),
        _bot("Hi, Sam here.", 6.0, keymedic_agent="sam@support"),
    ]
    assert history_entries(events) == [
        {"role": "user", "text": "my kraken key is broken", "ts": 2.0},
        {
            "role": "bot",
            "ts": 3.0,
            "text": "Which one?",
            "quick_replies": [
                {"content_type": "text", "title": "Kraken ****WXYZ", "payload": '/inform{"wallet_id":"1"}'}
            ],
        },
        {"role": "user", "text": "Kraken ****WXYZ", "ts": 4.0},
        {"role": "bot", "ts": 6.0, "text": "Hi, Sam here.", "agent": "sam@support"},
    ]


def test_the_credential_form_links_and_images_are_kept() -> None:
    form = {"type": "keymedic_credential_form", "token": "it_x", "fields": []}
    events = [
        _bot(
            "Here's how:", 1.0, {"buttons": [{"title": "Kraken API page", "url": "https://kraken.com/u/api"}]}
        ),
        _bot("Use this form", 2.0, {"custom": form}),
        _bot(None, 3.0, {"image": "https://example.com/a.png"}),
        _bot(None, 4.0, {}),
    ]
    entries = history_entries(events)
    assert entries[0]["quick_replies"] == [
        {"content_type": "web_url", "title": "Kraken API page", "url": "https://kraken.com/u/api"}
    ]
    assert entries[1]["custom"] == form and entries[1]["text"] == "Use this form"
    assert entries[2] == {
        "role": "bot",
        "ts": 3.0,
        "attachment": {"type": "image", "payload": {"src": "https://example.com/a.png"}},
    }
    assert len(entries) == 3  # an empty bot event shows nothing


def test_only_the_newest_entries_are_sent() -> None:
    events = [_user(f"message {n}", float(n)) for n in range(300)]
    entries = history_entries(events, limit=200)
    assert len(entries) == 200
    assert entries[0]["text"] == "message 100" and entries[-1]["text"] == "message 299"


def test_a_display_text_is_cut_short_and_a_blank_one_ignored() -> None:
    long = history_entries([_user("/affirm", 1.0, keymedic_display="x" * 500)])
    blank = history_entries([_user("/affirm", 1.0, keymedic_display="  ")])
    assert long[0]["text"] == "x" * 200
    assert blank[0]["text"] == "/affirm"


def test_quick_replies_keep_payload_buttons_and_turn_link_buttons_into_links() -> None:
    assert quick_replies(
        [{"title": "Yes", "payload": "/affirm"}, {"title": "Docs", "url": "https://x.test"}]
    ) == [
        {"content_type": "text", "title": "Yes", "payload": "/affirm"},
        {"content_type": "web_url", "title": "Docs", "url": "https://x.test"},
    ]


def _submitted(ts: float) -> dict[str, Any]:
    event = _user('/credentials_submitted{"credential_ref": "pc_x"}', ts, keymedic_display="I entered my key")
    event["parse_data"] = {"intent": {"name": "credentials_submitted"}}
    return event


def test_a_form_is_spent_once_a_key_was_submitted_or_a_newer_form_came() -> None:
    def form(token: str) -> dict[str, Any]:
        return {"type": "keymedic_credential_form", "token": token}

    events = [
        _bot("Use this form", 1.0, {"custom": form("it_1")}),
        _user("do I need a passphrase?", 2.0),  # a question in between leaves the form usable
        _bot("No, Kraken keys have none.", 3.0),
        _submitted(4.0),
        _bot("That key failed; here is a new form", 5.0, {"custom": form("it_2")}),
        _bot("And another", 6.0, {"custom": form("it_3")}),
    ]
    forms = [e for e in history_entries(events) if "custom" in e]
    assert [(f["custom"]["token"], f.get("spent", False)) for f in forms] == [
        ("it_1", True),
        ("it_2", True),
        ("it_3", False),
    ]
    assert history_entries(events)[3]["text"] == "I entered my key"
