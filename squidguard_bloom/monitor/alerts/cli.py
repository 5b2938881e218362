"""``squidguard-bloom-monitor alerts …`` and ``silence …``.

* ``alerts [show] [--json]``: alerts now, live silences, latest history and messages.
* ``alerts run``: evaluate and notify in a loop of its own (when ``ingest`` does not,
  e.g. with several ingest hosts on one PostgreSQL); ``--once`` evaluates once.
* ``alerts test``: send one test message through every channel, report each outcome.
* ``silence add --rule R --proxy GLOB --for 2h --comment TEXT``, ``silence list``,
  ``silence expire ID``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from squidguard_bloom.monitor.alerts import settings as alert_settings
from squidguard_bloom.monitor.alerts import store
from squidguard_bloom.monitor.alerts.channels import Message
from squidguard_bloom.monitor.alerts.service import AlertService
from squidguard_bloom.monitor.config import MonitorConfig
from squidguard_bloom.monitor.db import Database
from squidguard_bloom.monitor.errors import MonitorConfigError

COMMANDS = ("alerts", "silence")


def add_commands(sub: Any) -> None:
    """Add the alerts and silence subcommands to the monitor's parser."""
    al = sub.add_parser("alerts", help="alerts now and their history; run or test alerting")
    al.add_argument("action", nargs="?", default="show", choices=("show", "run", "test"))
    al.add_argument("--json", action="store_true", help="JSON instead of text (show)")
    al.add_argument("--history", type=int, default=20, help="history rows to show (20)")
    al.add_argument("--once", action="store_true", help="run: evaluate once, deliver, exit")

    si = sub.add_parser("silence", help="mute alerts for a while: add, list, expire")
    si.add_argument("action", choices=("add", "list", "expire"))
    si.add_argument("id", nargs="?", type=int, help="expire: the silence's id")
    si.add_argument("--rule", default="*", help="a rule name, or * for all (default *)")
    si.add_argument("--proxy", dest="silence_proxy", default="*",
                    help="a proxy name or glob (default *)")
    si.add_argument("--for", dest="duration", default="2h", help="how long (default 2h)")
    si.add_argument("--comment", default="", help="why (shown with the silence)")
    si.add_argument("--author", default=None, help="who (default: the login name)")
    si.add_argument("--json", action="store_true", help="list: JSON")


def alert_settings_of(cfg: MonitorConfig) -> alert_settings.AlertSettings:
    """The [alerts] table of the monitor's config (every default when absent)."""
    return alert_settings.parse(cfg.sections.get("alerts", {}), tz=cfg.tz)


def run(db: Database, cfg: MonitorConfig, args: argparse.Namespace) -> int:
    """Dispatch alerts/silence; the exit status."""
    if args.command == "silence":
        return _silence(db, args)
    settings = alert_settings_of(cfg)
    if args.action == "show":
        data = store.overview(db, time.time(), args.history)
        sys.stdout.write(json.dumps(data, indent=2) + "\n" if args.json else _text(data))
        return 0
    if args.action == "test":
        return _test(db, settings)
    return _run(db, settings, once=args.once)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(data: dict[str, Any]) -> str:
    out = ["Alerts now:" if data["alerts"] else "Alerts now: none"]
    out += [f"  {a['state']:<8} {a['rule']:<15} {a['proxy']:<20} since {_when(a['since'])} UTC "
            f" {a['summary']}" for a in data["alerts"]]
    out.append("Silences:" if data["silences"] else "Silences: none")
    out += [f"  #{s['id']} {s['rule']} {s['proxy']} until {_when(s['ends'])} UTC "
            f"by {s['author']}: {s['comment']}" for s in data["silences"]]
    out.append("History (newest first):")
    out += [f"  {_when(h['ts'])} {h['rule']} {h['proxy']}: {h['from']} -> {h['to']}"
            for h in data["history"]]
    out.append("Messages (newest first):")
    out += [f"  #{n['id']} {_when(n['created'])} {n['channel']} {n['status']}"
            f"{' (' + n['error'] + ')' if n['error'] else ''}: {n['title']}"
            for n in data["notifications"]]
    return "\n".join(out) + "\n"


def _silence(db: Database, args: argparse.Namespace) -> int:
    now = time.time()
    if args.action == "add":
        seconds = alert_settings.duration(args.duration, "--for")
        if seconds <= 0:
            raise MonitorConfigError("--for must be longer than 0")
        if args.rule != "*" and args.rule not in alert_settings.RULE_DEFAULTS:
            raise MonitorConfigError(f"--rule {args.rule!r}: no such rule (rules: "
                                     f"{', '.join(alert_settings.RULE_DEFAULTS)}, or *)")
        sid = store.add_silence(db, args.rule, args.silence_proxy, now, now + seconds, now,
                                args.author or getpass.getuser(), args.comment)
        print(f"silence #{sid}: {args.rule} on {args.silence_proxy} until "
              f"{_when(now + seconds)} UTC")
        return 0
    if args.action == "expire":
        if args.id is None:
            raise MonitorConfigError("silence expire needs the silence's id (see silence list)")
        if not store.expire_silence(db, args.id, now):
            print(f"no live silence #{args.id}", file=sys.stderr)
            return 1
        print(f"silence #{args.id} expired")
        return 0
    silences = store.overview(db, now, 0)["silences"]
    if args.json:
        print(json.dumps(silences, indent=2))
    else:
        for s in silences:
            print(f"#{s['id']} {s['rule']} {s['proxy']} until {_when(s['ends'])} UTC by "
                  f"{s['author']}: {s['comment']}")
    return 0


def _test(db: Database, settings: alert_settings.AlertSettings) -> int:
    if not settings.channels:
        print("no channel configured: add [[alerts.channels]] (see docs/alerts.md)",
              file=sys.stderr)
        return 1
    service = AlertService(db, settings, background=False)
    now = time.time()
    title = "[TEST] squidguard-bloom-monitor alerts"
    body = "A test message: this channel works. Nothing needs doing."
    data = {"version": 1, "kind": "test", "status": "test", "group": "test", "at": now,
            "title": title, "text": body, "alerts": [], "resolved": []}
    ids = {}
    with db.transaction():
        for channel in service.dispatcher.channels:
            ids[channel] = store.add_notification(db, now, "test", "test", channel, title,
                                                  body, data)
    for channel, nid in ids.items():
        service.dispatcher.submit(channel, Message(nid, title, body, data, time.time()))
    try:
        service.wait_delivered(timeout=settings.max_age)
    finally:
        service.close()
    rows = {nid: (status, error) for nid, status, error in db.execute(
        "SELECT id, status, error FROM alert_notifications WHERE group_key = 'test' AND "
        "created = ?", (now,))}
    failed = 0
    for channel, nid in ids.items():
        status, error = rows[nid]
        print(f"{channel}: {status}{': ' + error if error else ''}")
        failed += status != "sent"
    return 1 if failed else 0


def _run(db: Database, settings: alert_settings.AlertSettings, *, once: bool) -> int:
    service = AlertService(db, settings, background=not once)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if once:
            service.prober.run_round()
            service.evaluate(service.clock())
            service.wait_delivered(timeout=settings.max_age)
            return 0
        while not stop.is_set():
            service.tick()
            stop.wait(0.25)
    finally:
        service.close()
    return 0
