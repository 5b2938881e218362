"""``squidguard-bloom-monitor``: the monitoring host's command line.

Subcommands: ``migrate`` (bring the database schema up to date; every other
command does it too).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from squidguard_bloom.monitor.errors import MonitorError

DEFAULT_DB = "/var/lib/squidguard-bloom-monitor/monitor.db"
EXIT_ERROR = 1
EXIT_CONFIG = 78


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per command."""
    p = argparse.ArgumentParser(
        prog="squidguard-bloom-monitor",
        description="Store the proxies' shipped logs in a database and report on them.")
    p.add_argument("--db", default=DEFAULT_DB,
                   help=f"SQLite file, or postgresql://user@host/dbname (default {DEFAULT_DB})")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``squidguard-bloom-monitor``; the exit status."""
    args = build_parser().parse_args(argv)
    from squidguard_bloom.monitor.db import open_database  # noqa: PLC0415
    from squidguard_bloom.monitor.migrate import applied  # noqa: PLC0415

    try:
        with open_database(args.db) as db:
            if args.command == "migrate":
                print(f"schema version {max(applied(db))}")
    except MonitorError as exc:
        print(f"squidguard-bloom-monitor: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return 0
