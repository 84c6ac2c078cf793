"""The report as one self-contained HTML file: inline SVG plots (matplotlib, Agg-free object API), the
numbers behind them as a JSON block, no external resource, scripts or fonts.

The page's Content-Security-Policy forbids every network request and every script, so opening a report a
colleague mailed cannot call anywhere. All text that came from users (fallback messages) is HTML-escaped.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from bot.report.data import ReportData

__all__ = ["render_html", "plots"]

_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_FUNNEL_LABELS: Final = {"triaged": "Triaged", "key_updated": "Key updated", "resynced": "Resynced"}
_COLOURS: Final = ("#2f6db5", "#3f9e6e", "#e0a030", "#c8553d", "#7a5195", "#5b8e7d", "#bc5090", "#888888")


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    # Drop the XML prologue and DOCTYPE: the SVG is embedded in HTML.
    return text[text.index("<svg") :]


def _figure(width: float = 6.4, height: float = 3.2) -> Any:
    # The object API, not pyplot: no global figure state, no GUI backend, safe in any thread.
    from matplotlib.figure import Figure  # type: ignore[import-untyped]

    figure = Figure(figsize=(width, height))
    return figure


def _funnel(data: ReportData) -> str:
    figure = _figure()
    axes = figure.subplots()
    labels = [_FUNNEL_LABELS[k] for k in ("triaged", "key_updated", "resynced")]
    values = [data.funnel.get(k, 0) for k in ("triaged", "key_updated", "resynced")]
    bars = axes.barh(labels[::-1], values[::-1], color=_COLOURS[0])
    axes.bar_label(bars, padding=3)
    axes.set_xlabel("conversations")
    axes.set_title("From triage to a syncing wallet")
    axes.set_xlim(0, max(values + [1]) * 1.15)
    return _svg(figure)


def _containment(data: ReportData) -> str:
    figure = _figure()
    axes = figure.subplots()
    triaged = data.funnel.get("triaged", 0)
    other = max(0, triaged - data.contained - data.handed_off)
    labels = ["Resolved without a person", "Handed to support", "Neither (gave up / pending)"]
    values = [data.contained, data.handed_off, other]
    bars = axes.bar(labels, values, color=[_COLOURS[1], _COLOURS[3], _COLOURS[7]])
    axes.bar_label(bars, padding=3)
    axes.set_ylabel("triaged conversations")
    axes.set_title("Containment and hand-off")
    axes.set_ylim(0, max(values + [1]) * 1.2)
    axes.tick_params(axis="x", labelsize=8)
    return _svg(figure)


def _failing(data: ReportData) -> str | None:
    if not data.failing_items:
        return None
    exchanges = sorted(data.failing_items)
    items = sorted({item for counts in data.failing_items.values() for item in counts})
    figure = _figure(6.4, max(2.4, 0.5 * len(exchanges) + 1.2))
    axes = figure.subplots()
    left = [0] * len(exchanges)
    for index, item in enumerate(items):
        values = [data.failing_items[exchange].get(item, 0) for exchange in exchanges]
        axes.barh(exchanges, values, left=left, label=item, color=_COLOURS[index % len(_COLOURS)])
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_xlabel("failing or unsettled checklist items in live tests")
    axes.set_title("What fails, per exchange")
    axes.legend(fontsize=7, loc="lower right")
    return _svg(figure)


def _resolution(data: ReportData) -> str | None:
    if not data.resolution_s:
        return None
    figure = _figure()
    axes = figure.subplots()
    minutes = [s / 60 for s in data.resolution_s]
    axes.hist(minutes, bins=min(20, max(5, len(minutes))), color=_COLOURS[0])
    axes.set_xlabel("minutes from reporting the broken key to a finished resync")
    axes.set_ylabel("conversations")
    axes.set_title("Time to resolution")
    return _svg(figure)


def plots(data: ReportData) -> dict[str, str | None]:
    """Each plot as inline SVG markup (None when it has no data)."""
    return {
        "funnel": _funnel(data),
        "containment": _containment(data),
        "failing_items": _failing(data),
        "resolution": _resolution(data),
    }


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _csat_tables(data: ReportData) -> str:
    """CSAT (issue 16) beside containment and hand-off: mean rating per path and per exchange."""
    by_path = data.csat_summary(data.csat_by_path)
    if not by_path:
        return '<p class="empty">No satisfaction ratings in this window.</p>'
    by_exchange = data.csat_summary(data.csat_by_exchange)
    return (
        "<h3>Satisfaction (1-5)</h3>"
        + _table(["path", "ratings", "mean"], [(k, v["ratings"], v["mean"]) for k, v in by_path.items()])
        + _table(
            ["exchange", "ratings", "mean"], [(k, v["ratings"], v["mean"]) for k, v in by_exchange.items()]
        )
    )


def _section(title: str, svg: str | None, empty: str, extra: str = "") -> str:
    figure = f'<figure class="plot">{svg}</figure>' if svg else f'<p class="empty">{html.escape(empty)}</p>'
    return f"<section><h2>{html.escape(title)}</h2>{figure}{extra}</section>"


_STYLE: Final = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
body { padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1.5rem 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.8rem 1.1rem; min-width: 9rem; }
.card b { display: block; font-size: 1.6rem; }
section { margin: 2rem 0; } figure.plot { margin: 0; } figure.plot svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #eee; text-align: left; padding: 0.3rem 0.5rem; vertical-align: top; }
td:last-child, th:last-child { text-align: right; } .empty { color: #777; font-style: italic; }
"""


def render_html(data: ReportData, *, generated_at: datetime | None = None) -> str:
    """The whole report page."""
    generated = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    filters = data.filters
    # `until` is the midnight after the last day asked for; show the day people asked for.
    last_day = (filters.until - timedelta(days=1)).date() if filters.until else "now"
    window = f"{filters.since.date() if filters.since else 'the beginning'} to {last_day}"
    exchanges = ", ".join(sorted(filters.exchanges)) or "all exchanges"
    drawn = plots(data)
    cards = [
        ("Conversations", str(data.conversations)),
        ("Triaged", str(data.funnel.get("triaged", 0))),
        ("Contained", _percent(data.containment_rate)),
        ("Handed off", _percent(data.handoff_rate)),
        ("Median time to resolution", _duration(data.median_resolution_s)),
        ("Live key tests", str(data.diagnoses)),
    ]
    card_html = "".join(f'<div class="card">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in cards)
    failing_rows = [
        (exchange, item, count)
        for exchange, counts in sorted(data.failing_items.items())
        for item, count in counts.items()
    ]
    fallbacks = (
        _table(["message (redacted)", "times"], data.top_fallbacks)
        if data.top_fallbacks
        else '<p class="empty">No fallback messages in this window.</p>'
    )
    # `<` escaped so user text in the JSON can never close the script element.
    payload = json.dumps(data.to_dict(), sort_keys=True).replace("<", "\\u003c")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>KeyMedic report</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>KeyMedic report</h1>
<p class="meta">Conversations started {html.escape(window)}; {html.escape(exchanges)}. Generated {
        generated
    }.</p>
<div class="cards">{card_html}</div>
{_section("Funnel", drawn["funnel"], "")}
{_section("Containment and hand-off", drawn["containment"], "", _csat_tables(data))}
{
        _section(
            "Failing checklist items per exchange",
            drawn["failing_items"],
            "No live key test failed an item.",
            _table(["exchange", "item", "times"], failing_rows) if failing_rows else "",
        )
    }
{_section("Time to resolution", drawn["resolution"], "No conversation was resolved without a person.")}
<section><h2>Top fallback messages (for the next training round)</h2>{fallbacks}</section>
<script type="application/json" id="report-data">{payload}</script>
</body>
</html>
"""
