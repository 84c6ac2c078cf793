"""The console's HTML, server-rendered. Every value from the database is escaped; the only script is
`static/console.js`, allowed by the page's Content-Security-Policy (`CSP`), and every form carries the
session's CSRF token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

__all__ = [
    "CSP",
    "EDIT_KINDS",
    "edits_phrase",
    "render_sign_in",
    "render_set_password",
    "render_message",
    "render_queue",
    "render_ticket",
    "render_confirm_removal",
    "waited",
]

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

EDIT_KINDS: Final = (
    ("category_changes", "category change", "category changes"),
    ("notes", "note", "notes"),
    ("cost_basis_changes", "cost-basis change", "cost-basis changes"),
    ("manual_transactions", "manually added transaction", "manually added transactions"),
)


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def edits_phrase(impact: Mapping[str, Any] | None) -> str:
    """The manual edits at stake in words: what removing the connection would lose."""
    if not impact:
        return "unknown (the user has not been told the edits at stake yet)"
    parts = []
    for key, one, many in EDIT_KINDS:
        count = int(impact.get(key) or 0)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts) if parts else "no manual edits"


def waited(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _page(title: str, body: str, *, agent: str | None = None, csrf: str = "", page: str = "") -> str:
    signed_in = (
        f'<form method="post" action="/agent/sign-out" class="signout">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        f'<span>Signed in as {_e(agent)}</span> <button type="submit">Sign out</button></form>'
        if agent
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request (it would only 404)
        f"<title>{_e(title)} · KeyMedic support</title>"
        '<link rel="stylesheet" href="/agent/static/console.css">'
        f'<script src="/agent/static/console.js" defer></script></head><body data-page="{_e(page)}">'
        f'<header><a href="/agent">KeyMedic support</a>{signed_in}</header><main>'
        f'<div id="live" role="status" aria-live="polite" class="live"></div>{body}</main></body></html>'
    )


def render_message(title: str, message: str, *, agent: str | None = None, csrf: str = "") -> str:
    body = (
        f'<h1>{_e(title)}</h1><p role="alert">{_e(message)}</p><p><a href="/agent">Back to the queue</a></p>'
    )
    return _page(title, body, agent=agent, csrf=csrf)


def render_sign_in(csrf: str, *, error: str = "") -> str:
    alert = f'<p role="alert" class="error">{_e(error)}</p>' if error else ""
    body = (
        f"<h1>Sign in</h1>{alert}"
        '<form method="post" action="/agent/sign-in">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        '<label for="email">Email</label>'
        '<input id="email" name="email" type="email" autocomplete="username" required autofocus>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<button type="submit">Sign in</button></form>'
    )
    return _page("Sign in", body)


def render_set_password(csrf: str, *, error: str = "") -> str:
    alert = f'<p role="alert" class="error">{_e(error)}</p>' if error else ""
    body = (
        f"<h1>Set your password</h1>{alert}"
        '<form method="post" action="/agent/set-password" id="set-password">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        '<input type="hidden" name="token" id="link-token" value="">'
        '<label for="password">New password (at least 12 characters)</label>'
        '<input id="password" name="password" type="password" autocomplete="new-password" minlength="12"'
        " required>"
        '<button type="submit">Set password</button></form>'
    )
    return _page("Set your password", body, page="set-password")


def queue_rows(entries: Sequence[Mapping[str, Any]]) -> str:
    if not entries:
        return '<tr><td colspan="6">No open tickets.</td></tr>'
    return "".join(
        f'<tr data-ticket="{_e(entry["id"])}"><td><a href="/agent/ticket/{_e(entry["id"])}">'
        f"#{_e(entry['id'])}</a></td><td>{_e(entry['user'] or 'unknown')}</td>"
        f"<td>{_e(entry['exchange'] or '—')}</td>"
        f"<td>{_e(entry['reason'])}</td><td>{_e(waited(int(entry['waiting_s'])))}</td>"
        f"<td>{'paused' if entry['bot_paused'] else 'answering'}</td></tr>"
        for entry in entries
    )


def render_queue(entries: Sequence[Mapping[str, Any]], *, agent: str, csrf: str) -> str:
    body = (
        "<h1>Open tickets</h1><p>The longest-waiting first. New tickets appear here on their own.</p>"
        '<table id="queue"><caption>Open hand-off tickets</caption><thead><tr><th scope="col">Ticket</th>'
        '<th scope="col">User</th><th scope="col">Exchange</th><th scope="col">Reason</th>'
        '<th scope="col">Waiting</th><th scope="col">Bot</th></tr></thead>'
        f'<tbody id="queue-rows">{queue_rows(entries)}</tbody></table>'
    )
    return _page("Queue", body, agent=agent, csrf=csrf, page="queue")


def transcript_items(turns: Sequence[Mapping[str, Any]]) -> str:
    labels = {"user": "User", "bot": "Bot", "agent": "Agent"}
    return "".join(
        f'<li class="turn {_e(turn.get("role"))}"><span class="who">'
        f"{_e(labels.get(str(turn.get('role')), turn.get('role')))}"
        f"{' (' + _e(turn.get('agent')) + ')' if turn.get('agent') else ''}:</span> "
        f"{_e(turn.get('text'))}</li>"
        for turn in turns
    )


def _diagnosis(diagnosis: Mapping[str, Any] | None) -> str:
    if not diagnosis:
        return "<p>No live test on record.</p>"
    rows = "".join(
        f"<tr><td>{_e(item.get('item'))}</td><td>{_e(item.get('status'))}</td>"
        f"<td>{_e(item.get('fix') or '—')}</td><td><code>{_e(item.get('raw_code') or '—')}</code></td></tr>"
        for item in diagnosis.get("items") or []
    )
    unavailable = diagnosis.get("unavailable")
    note = (
        f"<p>The exchange was unavailable: {_e(unavailable.get('kind'))} "
        f"(<code>{_e(unavailable.get('raw_code'))}</code>).</p>"
        if isinstance(unavailable, Mapping)
        else ""
    )
    return (
        f"{note}<table><caption>Latest live test ({_e(diagnosis.get('exchange'))})</caption><thead><tr>"
        '<th scope="col">Item</th><th scope="col">Result</th><th scope="col">Fix</th>'
        f'<th scope="col">Exchange code</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _dl(mapping: Mapping[str, Any]) -> str:
    if not mapping:
        return "<p>None.</p>"
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in mapping.items()) + "</dl>"


def history_items(history: Sequence[Mapping[str, Any]]) -> str:
    return (
        "".join(
            f"<li>{_e(entry.get('at'))}: {_e(entry.get('action'))} by {_e(entry.get('by'))}</li>"
            for entry in history
        )
        or "<li>Nothing yet.</li>"
    )


def notification_items(notifications: Sequence[Mapping[str, Any]]) -> str:
    return (
        "".join(
            f"<li>{_e(n.get('delivery_id'))}: {_e(n.get('status'))} after {_e(n.get('attempts'))} attempt(s)"
            f"{' — last error: ' + _e(n.get('last_error')) if n.get('last_error') else ''}</li>"
            for n in notifications
        )
        or "<li>None.</li>"
    )


def _action(ticket_id: int, action: str, label: str, csrf: str, extra: str = "") -> str:
    return (
        f'<form method="post" action="/agent/ticket/{ticket_id}/{action}" class="action">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">{extra}'
        f'<button type="submit">{_e(label)}</button></form>'
    )


def render_ticket(
    view: Mapping[str, Any], *, agent: str, csrf: str, notice: str = "", error: str = ""
) -> str:
    ticket_id = int(view["id"])
    wallet = view.get("wallet") or {}
    user = view.get("user") or {}
    approval = view.get("removal_approval") or {}
    closed = view.get("status") == "closed"
    alert = f'<p role="alert" class="error">{_e(error)}</p>' if error else ""
    done = f'<p role="status" class="notice">{_e(notice)}</p>' if notice else ""
    actions = (
        "<p>This ticket is closed.</p>"
        if closed
        else (
            f'<form method="post" action="/agent/ticket/{ticket_id}/reply" class="reply">'
            f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
            '<label for="reply-text">Reply to the user</label>'
            '<textarea id="reply-text" name="text" rows="3" maxlength="4000" required></textarea>'
            '<button type="submit">Send reply</button></form>'
            + (
                f"<p>Removal approved by {_e(approval.get('by'))} at {_e(approval.get('at'))}.</p>"
                if approval.get("approved")
                else f'<p><a href="/agent/ticket/{ticket_id}/approve-removal">Approve removal…</a></p>'
            )
            + _action(ticket_id, "resume", "Resume the bot", csrf)
            + _action(ticket_id, "close", "Close the ticket", csrf)
        )
    )
    body = (
        f'<h1>Ticket #{ticket_id}</h1>{alert}{done}<dl class="facts">'
        f"<dt>User</dt><dd>{_e(user.get('display_name') or user.get('handle') or 'unknown')}</dd>"
        f"<dt>Exchange</dt><dd>{_e(wallet.get('exchange') or '—')}</dd>"
        f"<dt>Reason</dt><dd>{_e(', '.join(view.get('reasons') or [view.get('reason')]))}</dd>"
        f'<dt>Status</dt><dd id="ticket-status">{_e(view.get("status"))}</dd>'
        f'<dt>Bot</dt><dd id="bot-state">{"paused" if view.get("bot_paused") else "answering"}</dd>'
        f'<dt>Edits at stake</dt><dd id="edits">{_e(edits_phrase(view.get("edits_at_stake")))}</dd></dl>'
        f'<section aria-labelledby="actions-h"><h2 id="actions-h">Actions</h2>{actions}</section>'
        '<section aria-labelledby="transcript-h"><h2 id="transcript-h">Conversation (redacted)</h2>'
        f'<ol id="transcript">{transcript_items(view.get("transcript") or [])}</ol></section>'
        f'<section aria-labelledby="diag-h"><h2 id="diag-h">Diagnosis</h2>{_diagnosis(view.get("diagnosis"))}'
        "</section>"
        '<section aria-labelledby="check-h"><h2 id="check-h">Checklist answers</h2>'
        f"{_dl(view.get('checklist') or {})}</section>"
        '<section aria-labelledby="notif-h"><h2 id="notif-h">Notification to support</h2>'
        f'<ul id="notifications">{notification_items(view.get("notifications") or [])}</ul></section>'
        '<section aria-labelledby="hist-h"><h2 id="hist-h">Agent actions</h2>'
        f'<ol id="history">{history_items(view.get("history") or [])}</ol></section>'
    )
    return _page(f"Ticket #{ticket_id}", body, agent=agent, csrf=csrf, page=f"ticket:{ticket_id}")


def render_confirm_removal(view: Mapping[str, Any], *, agent: str, csrf: str) -> str:
    ticket_id = int(view["id"])
    exchange = (view.get("wallet") or {}).get("exchange") or "the exchange"
    edits = edits_phrase(view.get("edits_at_stake"))
    body = (
        f"<h1>Approve removing the {_e(exchange)} connection?</h1>"
        f'<p id="confirm-edits">Removing it loses the user\'s manual edits: <strong>{_e(edits)}</strong>. '
        "The user is then walked through removing and re-adding the connection.</p>"
        f"<p>The approval is recorded under your name ({_e(agent)}).</p>"
        + _action(ticket_id, "approve-removal", f"Approve removal (loses {edits})", csrf)
        + f'<p><a href="/agent/ticket/{ticket_id}">Cancel</a></p>'
    )
    return _page("Approve removal", body, agent=agent, csrf=csrf)
