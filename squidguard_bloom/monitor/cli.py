"""``squidguard-bloom-monitor``: the monitoring host's command line.

Commands: ``ingest`` (follow the incoming directories, or ``--once``),
``report`` (terminal view of recent activity, ``--json``), ``prune`` (apply
retention now), ``migrate`` (bring the schema up to date; every command does
it at start); the dashboard's ``serve``, ``createuser`` and ``demo``
(web/commands.py). Settings come from ``--config`` (TOML, see config.py) and flags.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from squidguard_bloom.monitor import config as monitor_config
from squidguard_bloom.monitor.alerts import cli as alerts_cli
from squidguard_bloom.monitor.db import Database, redact
from squidguard_bloom.monitor.errors import MonitorConfigError, MonitorError
from squidguard_bloom.monitor.ingest import Ingest
from squidguard_bloom.monitor.migrate import applied, open_database
from squidguard_bloom.monitor.parse import Clock
from squidguard_bloom.monitor.report import as_json, as_table, collect, parse_duration
from squidguard_bloom.monitor.retention import prune
from squidguard_bloom.monitor.web import commands as web_commands

EXIT_ERROR = 1
EXIT_BUSY = 75
EXIT_CONFIG = 78
PRUNE_EVERY = 3600.0  # seconds between retention runs while ingest follows

log = logging.getLogger("squidguard_bloom.monitor")

MAX_WORKERS = 4  # measured: beyond the writer's share of a line, more only add memory


def default_workers() -> int:
    """One ingest worker per CPU this process may use, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per command."""
    p = argparse.ArgumentParser(
        prog="squidguard-bloom-monitor",
        description="Store the proxies' shipped logs in a database, exactly once, and report.")
    p.add_argument("-c", "--config", type=Path,
                   help=f"TOML config (default {monitor_config.DEFAULT_CONFIG} when it exists)")
    p.add_argument("--db", help="SQLite file, or postgresql://user@host/dbname "
                   f"(default {monitor_config.DEFAULT_DB})")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    ing = sub.add_parser("ingest", help="store the shipped logs (follows them; see --once)")
    ing.add_argument("--root", action="append", type=Path, metavar="DIR",
                     help="a directory holding one directory per proxy (repeatable)")
    ing.add_argument("--proxy", action="append", metavar="NAME=DIR",
                     help="one proxy's directory of streams (repeatable)")
    ing.add_argument("--once", action="store_true", help="store what is there, then exit")
    ing.add_argument("--tz", help="the proxies' time zone for squidGuard-format times "
                     "(default: this host's)")
    ing.add_argument("--poll-interval", type=float, help="seconds between looks when idle")
    ing.add_argument("--raw-days", type=float, help="keep raw rows this many days (30)")
    ing.add_argument("--rollup-days", type=float, help="keep rollups this many days (400)")
    ing.add_argument("--batch-mb", type=float, default=8.0,
                     help="bytes of log per transaction, in MB (8)")
    ing.add_argument("--workers", type=int, default=default_workers(),
                     help="processes that parse and store batches; 1: all in this process "
                     f"(default: one per CPU, at most {MAX_WORKERS}: {default_workers()} here)")

    rep = sub.add_parser("report", help="per proxy: lines, blocks, welcomes, cache hits")
    rep.add_argument("--since", default="1h", help="window: 90s, 15m, 1h, 2d (default 1h)")
    rep.add_argument("--json", action="store_true", help="JSON instead of a table")
    rep.add_argument("--top", type=int, default=5, help="length of the top lists (5)")

    pr = sub.add_parser("prune", help="delete raw rows and rollups past their retention")
    pr.add_argument("--raw-days", type=float)
    pr.add_argument("--rollup-days", type=float)

    sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    web_commands.add_commands(sub)  # serve, createuser, demo
    alerts_cli.add_commands(sub)
    return p


def _settings(args: argparse.Namespace) -> monitor_config.MonitorConfig:
    cfg = monitor_config.load(args.config)
    if args.db:
        cfg.db = args.db
    for name in ("tz", "poll_interval", "raw_days", "rollup_days"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(cfg, name, value)
    if getattr(args, "root", None):
        cfg.roots = list(args.root)
    for spec in getattr(args, "proxy", None) or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise MonitorConfigError(f"--proxy {spec!r}: write NAME=DIR")
        cfg.proxies[name] = Path(path)
    monitor_config.check(cfg)
    return cfg


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s squidguard-bloom-monitor %(levelname)s: %(message)s"))
    root = logging.getLogger("squidguard_bloom.monitor")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``squidguard-bloom-monitor``; the exit status."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        cfg = _settings(args)
    except MonitorConfigError as exc:
        print(f"squidguard-bloom-monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    try:
        if args.command in web_commands.COMMANDS:
            return web_commands.run(args, cfg.db)
        with open_database(cfg.db) as db:
            if args.command == "ingest":
                return _ingest(db, cfg, args)
            if args.command == "report":
                return _report(db, args)
            if args.command == "prune":
                return _prune(db, cfg)
            if args.command in alerts_cli.COMMANDS:
                return alerts_cli.run(db, cfg, args)

            print(f"{redact(cfg.db)}: schema version {max(applied(db))}")
            return 0
    except MonitorConfigError as exc:
        print(f"squidguard-bloom-monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except MonitorError as exc:
        print(f"squidguard-bloom-monitor: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _ingest(db: Database, cfg: monitor_config.MonitorConfig, args: argparse.Namespace) -> int:

    if not cfg.roots and not cfg.proxies:
        raise MonitorConfigError("nothing to ingest: give --root DIR (one directory per "
                                 "proxy inside) or --proxy NAME=DIR, or 'roots' in the config")
    if not db.try_lock("ingest"):
        print(f"squidguard-bloom-monitor: another ingest is running on {redact(cfg.db)}; "
              "only one may write a database", file=sys.stderr)
        return EXIT_BUSY
    if args.workers < 1:
        raise MonitorConfigError("--workers must be 1 or more")
    ingest = Ingest(db, roots=cfg.roots, proxies=cfg.proxies, clock=Clock(cfg.zone()),
                    batch_bytes=int(args.batch_mb * 1e6), workers=args.workers)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    last_prune = [0.0]
    # [alerts] in the config: evaluate them here, between passes (see alerts/service.py)
    alerting = None
    if "alerts" in cfg.sections and not args.once:
        from squidguard_bloom.monitor.alerts.service import AlertService  # noqa: PLC0415

        alerting = AlertService(db, alerts_cli.alert_settings_of(cfg))

    stored = [0]

    def housekeeping() -> None:
        if alerting is not None:
            total = ingest.stats.lines + ingest.stats.unparsed
            alerting.tick(fresh=total != stored[0])  # new lines: evaluate now (<= 1/s)
            stored[0] = total
        if not args.once and time.monotonic() - last_prune[0] >= PRUNE_EVERY:
            last_prune[0] = time.monotonic()
            removed = prune(db, raw_days=cfg.raw_days, rollup_days=cfg.rollup_days)
            if any(removed.values()):
                log.info("retention: removed %s", ", ".join(
                    f"{n} {t}" for t, n in removed.items() if n))

    where = ", ".join([str(r) for r in cfg.roots] + [f"{n}={p}" for n, p in cfg.proxies.items()])
    log.info("ingesting %s into %s%s", where, redact(cfg.db), " (once)" if args.once else "")
    started = time.monotonic()
    try:
        stats = ingest.run(once=args.once, poll=cfg.poll_interval, stop=stop,
                           every_pass=housekeeping)
    finally:
        if alerting is not None:
            alerting.close()
    took = time.monotonic() - started
    log.info("stored %d lines (%d unparsed, %d bytes) in %d transactions, %.1f s",
             stats.lines + stats.unparsed, stats.unparsed, stats.bytes, stats.transactions, took)
    return 0


def _report(db: Database, args: argparse.Namespace) -> int:

    now = time.time()
    data = collect(db, now - parse_duration(args.since), now, top=args.top)
    sys.stdout.write(as_json(data) if args.json else as_table(data))
    return 0


def _prune(db: Database, cfg: monitor_config.MonitorConfig) -> int:

    removed = prune(db, raw_days=cfg.raw_days, rollup_days=cfg.rollup_days)
    print(", ".join(f"{t}: {n}" for t, n in removed.items()))
    return 0
