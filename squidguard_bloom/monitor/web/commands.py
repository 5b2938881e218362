"""The dashboard's subcommands of ``squidguard-bloom-monitor``: serve, createuser, demo.

aiohttp is imported only when ``serve`` or ``demo`` runs, so ingest and report
work without it.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from squidguard_bloom.monitor.errors import MonitorConfigError, MonitorError
from squidguard_bloom.monitor.migrate import open_database
from squidguard_bloom.monitor.web import auth

COMMANDS = ("serve", "createuser", "demo")
DEFAULT_PORT = 8080

log = logging.getLogger("squidguard_bloom.monitor")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add serve, createuser and demo to the monitor's subparsers."""
    srv = sub.add_parser("serve", help="the web dashboard (login required)")
    _listen_options(srv)
    srv.add_argument("--secure-cookies", action="store_true",
                     help="mark cookies Secure (set this behind an HTTPS reverse proxy)")
    srv.add_argument("--trust-forwarded", action="store_true",
                     help="take the client address from X-Forwarded-For when the request "
                     "comes from a loopback reverse proxy (for the login rate limit)")
    srv.add_argument("--cache-seconds", type=float, default=30.0,
                     help="how long pages share the top lists of ranges of 6 h and more "
                     "(30; 0: compute them for every request)")

    cu = sub.add_parser("createuser", help="add a dashboard user, or set a new password")
    cu.add_argument("name")
    cu.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input")

    demo = sub.add_parser("demo", help="generated traffic from three proxies, served on "
                          "127.0.0.1 (a temporary database unless --db is given)")
    _listen_options(demo)
    demo.add_argument("--hours", type=float, default=24.0, help="hours of history (24)")
    demo.add_argument("--dir", type=Path, help="where to keep the demo's logs and database "
                      "(default: a new temporary directory)")


def _listen_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1; put a TLS reverse proxy in front)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument("--poll-interval", dest="live_interval", type=float, default=0.25,
                   help="seconds between looks for new rows for the live views (0.25)")


def run(args: argparse.Namespace, db_url: str) -> int:
    """Run one of COMMANDS; the exit status."""
    if args.command == "createuser":
        return _createuser(args, db_url)
    try:
        from squidguard_bloom.monitor.web.app import serve  # noqa: PLC0415
    except ImportError as exc:
        raise MonitorError("the dashboard needs aiohttp: pip install "
                           "'squidguard-bloom[monitor]'") from exc
    if args.command == "serve":
        with open_database(db_url):  # migrate once before the server's threads connect
            pass
        serve(db_url, args.host, args.port, secure_cookies=args.secure_cookies,
              trust_forwarded=args.trust_forwarded, poll_interval=args.live_interval,
              cache_seconds=args.cache_seconds)
        return 0
    return _demo(args, serve)


def _createuser(args: argparse.Namespace, db_url: str) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise MonitorConfigError("the passwords differ; nothing changed")
    with open_database(db_url) as db:
        created = auth.set_user(db, args.name, password)
    print(f"{'created' if created else 'new password for'} user {args.name}"
          f"{'' if created else ' (their sessions are ended)'}")
    return 0


def _demo(args: argparse.Namespace, serve: Callable[..., None]) -> int:
    from squidguard_bloom.monitor import demo  # noqa: PLC0415

    db_path, root = demo.default_paths(args.dir)
    db_url = args.db or str(db_path)
    print(f"generating {args.hours:g} h of traffic from three proxies into {root} ...",
          flush=True)
    proxies = demo.fill(db_url, root, args.hours)
    password = secrets.token_urlsafe(12)
    with open_database(db_url) as db:
        auth.set_user(db, "demo", password)
    print(f"database: {db_url}\nlog in as demo / {password}", flush=True)
    stop = threading.Event()
    threads = [threading.Thread(target=demo.live_traffic, args=(proxies, stop), daemon=True),
               threading.Thread(target=demo.follow, args=(db_url, root, stop), daemon=True)]
    for t in threads:
        t.start()
    try:
        serve(db_url, args.host, args.port, poll_interval=args.live_interval,
              ready=lambda message: print(message, flush=True))
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    return 0
