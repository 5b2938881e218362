"""The alerts' tables (schema/*/0100_alerts.sql): engine state, history, outbox, silences.

Also the read side the CLI (and a dashboard) use: :func:`overview` returns
plain dicts ready for JSON.
"""

from __future__ import annotations

import json
from typing import Any

from squidguard_bloom.monitor.alerts.engine import (
    Alert,
    Engine,
    Group,
    Resolved,
    Silence,
    Transition,
)
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorError

_STATE_COLS = ("rule", "proxy", "state", "active_since", "since", "firing_since", "last_true",
               "summary")
_GROUP_COLS = ("group_key", "first_seen", "last_sent", "notified")


def load(db: Database, engine: Engine, now: float) -> None:
    """Fill engine with the state saved by the last run (alerts, groups, live silences)."""
    engine.alerts = {}
    for row in db.execute(f"SELECT {', '.join(_STATE_COLS)} FROM alert_state"):
        a = Alert(*row)
        engine.alerts[a.key] = a
    engine.groups = {}
    for key, first_seen, last_sent, notified in db.execute(
            f"SELECT {', '.join(_GROUP_COLS)} FROM alert_groups"):
        doc = json.loads(notified)
        engine.groups[key] = Group(key, first_seen, last_sent, list(doc["notified"]),
                                   [Resolved(**r) for r in doc["resolved"]])
    load_silences(db, engine, now)


def load_silences(db: Database, engine: Engine, now: float) -> None:
    """The silences that have not ended."""
    engine.silences = [Silence(*row) for row in db.execute(
        "SELECT id, rule, proxy, starts, ends, author, comment FROM alert_silences "
        "WHERE ends > ? ORDER BY id", (now,))]


def save(db: Database, engine: Engine, changes: list[Transition]) -> None:
    """Replace the saved state by engine's and append changes to the history (call inside a
    transaction)."""
    db.execute("DELETE FROM alert_state")
    db.executemany(f"INSERT INTO alert_state ({', '.join(_STATE_COLS)}) VALUES "
                   f"({', '.join('?' * len(_STATE_COLS))})",
                   [(a.rule, a.proxy, a.state, a.active_since, a.since, a.firing_since,
                     a.last_true, a.summary) for a in engine.alerts.values()])
    db.execute("DELETE FROM alert_groups")
    db.executemany(f"INSERT INTO alert_groups ({', '.join(_GROUP_COLS)}) VALUES (?, ?, ?, ?)",
                   [(g.key, g.first_seen, g.last_sent, json.dumps(
                       {"notified": g.notified, "resolved": [vars(r) for r in g.resolved]}))
                    for g in engine.groups.values()])
    if changes:
        db.executemany("INSERT INTO alert_history (ts, rule, proxy, from_state, to_state, "
                       "summary) VALUES (?, ?, ?, ?, ?, ?)",
                       [(c.at, c.rule, c.proxy, c.from_state, c.to_state, c.summary)
                        for c in changes])


def add_notification(db: Database, created: float, group: str, kind: str, channel: str,
                     title: str, body: str, payload: dict[str, Any], status: str = "queued"
                     ) -> int:
    """Record a message for one channel; its id."""
    return int(db.scalar(
        "INSERT INTO alert_notifications (created, group_key, kind, channel, title, body, "
        "payload, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (created, group, kind, channel, title, body, json.dumps(payload), status)))


def finish_notification(db: Database, nid: int, status: str, attempts: int,
                        delivered: float | None, error: str | None) -> None:
    """What the channel made of a message."""
    db.execute("UPDATE alert_notifications SET status = ?, attempts = ?, delivered = ?, "
               "error = ? WHERE id = ?", (status, attempts, delivered, error, nid))


def queued(db: Database, since: float) -> list[tuple[int, str, str, str, str]]:
    """(id, channel, title, body, payload) of messages still queued, created after since."""
    return db.execute("SELECT id, channel, title, body, payload FROM alert_notifications "
                      "WHERE status = 'queued' AND created >= ? ORDER BY id", (since,))


def add_silence(db: Database, rule: str, proxy: str, starts: float, ends: float,
                created: float, author: str, comment: str) -> int:
    """A new silence; its id."""
    if ends <= starts:
        raise MonitorError("a silence must end after it starts")
    with db.transaction():
        return int(db.scalar("INSERT INTO alert_silences (rule, proxy, starts, ends, created, "
                             "author, comment) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                             (rule, proxy, starts, ends, created, author, comment)))


def expire_silence(db: Database, sid: int, now: float) -> bool:
    """End a silence now; False when there is no such live silence."""
    with db.transaction():
        live = db.scalar("SELECT count(*) FROM alert_silences WHERE id = ? AND ends > ?",
                         (sid, now))
        if not live:
            return False
        db.execute("UPDATE alert_silences SET ends = ? WHERE id = ?", (now, sid))
    return True


def overview(db: Database, now: float, history: int = 50) -> dict[str, Any]:
    """Alerts now, live silences, the latest history and notifications, as plain data."""
    alerts = [dict(zip(_STATE_COLS, row, strict=True)) for row in db.execute(
        f"SELECT {', '.join(_STATE_COLS)} FROM alert_state ORDER BY rule, proxy")]
    silences = [dict(zip(("id", "rule", "proxy", "starts", "ends", "author", "comment"), row,
                         strict=True)) for row in db.execute(
        "SELECT id, rule, proxy, starts, ends, author, comment FROM alert_silences "
        "WHERE ends > ? ORDER BY id", (now,))]
    hist = [dict(zip(("ts", "rule", "proxy", "from", "to", "summary"), row, strict=True))
            for row in db.execute("SELECT ts, rule, proxy, from_state, to_state, summary "
                                  "FROM alert_history ORDER BY id DESC LIMIT ?", (history,))]
    sent = [dict(zip(("id", "created", "group", "kind", "channel", "title", "status",
                      "attempts", "delivered", "error"), row, strict=True))
            for row in db.execute("SELECT id, created, group_key, kind, channel, title, status, "
                                  "attempts, delivered, error FROM alert_notifications "
                                  "ORDER BY id DESC LIMIT ?", (history,))]
    return {"now": now, "alerts": alerts, "silences": silences, "history": hist,
            "notifications": sent}
