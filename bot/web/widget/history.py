"""What the widget shows after a page reload: the conversation, rebuilt from the tracker's events.

The conversation lives in Rasa's tracker store (DESIGN §6: the session id follows from the verified JWT), so
the socket.io channel sends the widget these entries when it confirms the session. The shapes match what the
channel sends live (`bot_uttered`), so the widget renders both the same way:

    {"role": "user", "text": "…", "ts": 1767225600.1}
    {"role": "bot", "text"?: "…", "quick_replies"?: [...], "custom"?: {...}, "attachment"?: {...},
     "agent"?: "sam@support", "spent"?: true, "ts": 1767225601.2}

A credential form is `spent` once the user submitted a key after it (`credentials_submitted`) or the bot sent
a newer form: a reload then shows it as no longer usable instead of offering a token the intake would refuse.

User texts in the tracker were redacted by the channel before Rasa saw them; nothing here un-redacts.
Framework-free: events are the plain dicts of a tracker's `events` list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["DISPLAY_METADATA_KEY", "MAX_ENTRIES", "history_entries", "quick_replies"]

# Set by the widget on a button press or a form submission: what the user sees instead of the raw payload
# (`/inform{"wallet_id":"3"}` reads as "Kraken ****WXYZ").
DISPLAY_METADATA_KEY: Final = "keymedic_display"
# Must match bot.handoff.transcript.AGENT_METADATA_KEY: an agent's reply relayed by the agent API.
_AGENT_METADATA_KEY: Final = "keymedic_agent"
_CREDENTIAL_FORM: Final = "keymedic_credential_form"
_SUBMITTED_INTENT: Final = "credentials_submitted"
# Rasa logs a reminder or an external event as a user message "EXTERNAL: <intent>"; the user never said it.
_EXTERNAL_PREFIX: Final = "EXTERNAL: "
# Enough for any key-update conversation; a reload must not ship an unbounded tracker to the browser.
MAX_ENTRIES: Final = 200
_MAX_DISPLAY_CHARS: Final = 200


def quick_replies(buttons: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rasa buttons as socket.io quick replies; a link button (`url`, no `payload`) becomes `web_url`."""
    replies: list[dict[str, Any]] = []
    for button in buttons:
        title = str(button.get("title", ""))
        if "url" in button and "payload" not in button:
            replies.append({"content_type": "web_url", "title": title, "url": str(button["url"])})
        else:
            replies.append(
                {"content_type": "text", "title": title, "payload": str(button.get("payload", ""))}
            )
    return replies


def _user_entry(event: Mapping[str, Any]) -> dict[str, Any] | None:
    text = event.get("text")
    if not isinstance(text, str) or not text.strip() or text.startswith(_EXTERNAL_PREFIX):
        return None
    metadata = event.get("metadata")
    display = metadata.get(DISPLAY_METADATA_KEY) if isinstance(metadata, Mapping) else None
    if isinstance(display, str) and display.strip():
        text = display.strip()[:_MAX_DISPLAY_CHARS]
    return {"role": "user", "text": text, "ts": event.get("timestamp")}


def _bot_entry(event: Mapping[str, Any]) -> dict[str, Any] | None:
    entry: dict[str, Any] = {"role": "bot", "ts": event.get("timestamp")}
    text = event.get("text")
    if isinstance(text, str) and text.strip():
        entry["text"] = text
    raw = event.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    buttons = data.get("buttons") or data.get("quick_replies")
    if isinstance(buttons, list) and buttons:
        entry["quick_replies"] = quick_replies(b for b in buttons if isinstance(b, Mapping))
    if isinstance(data.get("custom"), Mapping):
        entry["custom"] = dict(data["custom"])
    image = data.get("image")
    if isinstance(image, str) and image:
        entry["attachment"] = {"type": "image", "payload": {"src": image}}
    elif isinstance(data.get("attachment"), Mapping):
        entry["attachment"] = dict(data["attachment"])
    metadata = event.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get(_AGENT_METADATA_KEY):
        entry["agent"] = str(metadata[_AGENT_METADATA_KEY])
    return entry if len(entry) > 2 else None


def history_entries(events: Iterable[Mapping[str, Any]], *, limit: int = MAX_ENTRIES) -> list[dict[str, Any]]:
    """The user's and the bot's (and agents') messages, oldest first, at most the newest `limit`."""
    entries: list[dict[str, Any]] = []
    open_form: dict[str, Any] | None = None
    for event in events:
        kind = event.get("event")
        entry = _user_entry(event) if kind == "user" else _bot_entry(event) if kind == "bot" else None
        if kind == "user" and open_form is not None and _intent(event) == _SUBMITTED_INTENT:
            open_form["spent"], open_form = True, None
        if entry is None:
            continue
        if isinstance(entry.get("custom"), Mapping) and entry["custom"].get("type") == _CREDENTIAL_FORM:
            if open_form is not None:
                open_form["spent"] = True
            open_form = entry
        entries.append(entry)
    return entries[-limit:] if limit > 0 else []


def _intent(event: Mapping[str, Any]) -> str | None:
    parse_data = event.get("parse_data")
    intent = parse_data.get("intent") if isinstance(parse_data, Mapping) else None
    name = intent.get("name") if isinstance(intent, Mapping) else None
    return name if isinstance(name, str) else None
