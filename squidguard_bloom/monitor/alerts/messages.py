"""What a message says: short, plain text; what happened, where, since when, what to do.

The same words go to every channel: Telegram gets ``title`` and ``body`` as one
text, e-mail uses the title as its subject, the webhook gets them inside its
JSON payload together with the alerts as data (see docs/alerts.md).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from squidguard_bloom.monitor.alerts.engine import Alert, Outgoing, Resolved
from squidguard_bloom.monitor.alerts.rules import TITLES, WHAT_TO_DO

MAX_LINES = 15  # alerts listed one by one; the rest are counted
PAYLOAD_VERSION = 1
_HEAD = {"firing": "FIRING", "update": "FIRING", "resolved": "RESOLVED",
         "repeat": "STILL FIRING"}


class Clock:
    """Formats times in one zone (default UTC) for messages."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    def at(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).strftime("%Y-%m-%d %H:%M %Z")

    def time(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).strftime("%H:%M")


def _span(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    if minutes < 1:
        return f"{max(0, int(seconds))} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _where(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{len(names)} proxies"


def _rules_of(msg: Outgoing) -> list[str]:
    return sorted({a.rule for a in msg.firing} | {r.rule for r in msg.resolved})


def render(msg: Outgoing, clock: Clock) -> tuple[str, str]:
    """(title, body) of a message."""
    rules = _rules_of(msg)
    what = TITLES[rules[0]] if len(rules) == 1 else f"{len(rules)} alerts"
    if msg.kind == "resolved":
        title = f"[RESOLVED] {what}: {_where(sorted({r.proxy for r in msg.resolved}))}"
    else:
        title = f"[{_HEAD[msg.kind]}] {what}: {_where(sorted({a.proxy for a in msg.firing}))}"
    lines: list[str] = []
    for a in msg.firing[:MAX_LINES]:
        lines.append(_firing_line(a, msg, clock, len(rules) > 1))
    if len(msg.firing) > MAX_LINES:
        lines.append(f"... and {len(msg.firing) - MAX_LINES} more")
    if msg.resolved:
        if msg.firing:
            lines.append("Recovered:")
        for r in msg.resolved[:MAX_LINES]:
            lines.append(_resolved_line(r, clock, len(rules) > 1))
        if len(msg.resolved) > MAX_LINES:
            lines.append(f"... and {len(msg.resolved) - MAX_LINES} more")
    if msg.firing:
        for rule in sorted({a.rule for a in msg.firing}):
            lines.append(f"What to do: {WHAT_TO_DO[rule]}")
    return title, "\n".join(lines)


def _firing_line(a: Alert, msg: Outgoing, clock: Clock, name_rule: bool) -> str:
    new = " (new)" if msg.kind == "update" and a.key in msg.new else ""
    rule = f"{TITLES[a.rule]}: " if name_rule else ""
    return (f"{a.proxy}: {rule}{a.summary}, since {clock.at(a.since)} "
            f"({_span(msg.at - a.since)}){new}")


def _resolved_line(r: Resolved, clock: Clock, name_rule: bool) -> str:
    rule = f"{TITLES[r.rule]}, " if name_rule else ""
    return (f"{r.proxy}: {rule}recovered at {clock.time(r.ended)} after "
            f"{_span(r.ended - r.since)} (since {clock.at(r.since)})")


def payload(msg: Outgoing, title: str, body: str) -> dict[str, Any]:
    """The webhook's JSON body (also stored with every notification)."""
    return {
        "version": PAYLOAD_VERSION,
        "kind": msg.kind,
        "status": "resolved" if msg.kind == "resolved" else "firing",
        "group": msg.group,
        "at": msg.at,
        "title": title,
        "text": body,
        "alerts": [{"rule": a.rule, "proxy": a.proxy, "state": a.state, "since": a.since,
                    "summary": a.summary, "new": a.key in msg.new} for a in msg.firing],
        "resolved": [{"rule": r.rule, "proxy": r.proxy, "since": r.since, "ended": r.ended,
                      "summary": r.summary} for r in msg.resolved],
    }
