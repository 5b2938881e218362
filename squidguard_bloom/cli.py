"""``squidguard-bloom``: the command Squid runs, with squidGuard's flags.

    squidguard-bloom [-c FILE] [-d] [-C FILE|all] [-u] [-b] [-P] [-t TIME] [-v] [-h]
                     [--explain] [--emergency pass|block:URL] [--reply-style squid34|legacy]
                     [--example] [--check] [--no-fast-path]

Exit codes follow squidGuard: 0 normal, 1 usage, 4 fatal error with -P.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from squidguard_bloom import __version__

DEFAULT_CONFIG = "/etc/squidguard/squidGuard.conf"
EXIT_USAGE = 1
EXIT_PASSTHROUGH = 4

USAGE = """\
Usage: squidguard-bloom [-bduPv] [-C block] [-t time] [-c file] [--explain] [...]
Options:
  -v          : show version number
  -d          : all errors to stderr
  -b          : destination blocks (with -C: show progress)
  -P          : do not go into emergency mode when an error occurs (exit 4)
  -C block    : create .db files (compiled lists) for destination blocks
                (all: every list the configuration uses) and exit
  -u          : update .db files from .diff files and exit
  -t time     : specify startup time on the format yyyy-mm-ddTHH:MM:SS
  -c file     : load alternate configfile (default %s)
  --explain   : after each reply, print on stderr why it was given
  --emergency pass|block:URL
              : what to answer when the configuration cannot be loaded
                (default: the config's "emergency" setting, else pass, like squidGuard)
  --reply-style squid34|legacy
              : reply format (legacy: Squid <= 3.3 "302:URL" style)
  --example   : run on the bundled example configuration and lists
  --check     : load the configuration and lists, report problems, exit 0/1
  --no-fast-path
              : decide every request in Python (the C fast path gives the same answers)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"squidguard-bloom: {message}\n" + USAGE % DEFAULT_CONFIG)
        raise SystemExit(EXIT_USAGE)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """squidGuard-compatible flags plus our long options."""
    p = _Parser(add_help=False, usage=argparse.SUPPRESS)
    p.add_argument("-c", dest="config", default=None)
    p.add_argument("-d", dest="debug", action="store_true")
    p.add_argument("-C", dest="compile", default=None)
    p.add_argument("-u", dest="update", action="store_true")
    p.add_argument("-b", dest="progress", action="store_true")
    p.add_argument("-P", dest="passthrough", action="store_true")
    p.add_argument("-t", dest="start_time", default=None)
    p.add_argument("-v", dest="version", action="store_true")
    p.add_argument("-h", "-?", "--help", dest="help", action="store_true")
    p.add_argument("--explain", action="store_true")
    p.add_argument("--emergency", default=None)
    p.add_argument("--reply-style", choices=("squid34", "legacy"), default="squid34")
    p.add_argument("--example", action="store_true")
    p.add_argument("--check", action="store_true")
    p.add_argument("--no-fast-path", dest="fast_path", action="store_false")
    return p.parse_args(argv)


def clock_offset(start_time: str) -> float:
    """Seconds to add to the real clock for squidGuard's ``-t yyyy-mm-ddTHH:MM:SS``."""
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y.%m.%dT%H:%M:%S", "%Y-%m-%dT%H-%M-%S"):
        try:
            wanted = time.mktime(time.strptime(start_time, fmt))
        except ValueError:
            continue
        return wanted - time.time()
    msg = f"-t {start_time!r}: date format error, should be yyyy-mm-ddTHH:MM:SS"
    raise ValueError(msg)


def example_config() -> Path:
    """The bundled example squidGuard.conf (its lists sit beside it)."""
    return Path(__file__).resolve().parent / "defaults" / "squidGuard.conf"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``squidguard-bloom`` console script."""
    args = parse_args(argv)
    if args.help:
        sys.stderr.write(USAGE % DEFAULT_CONFIG)
        return EXIT_USAGE
    if args.version:
        sys.stderr.write(f"squidguard-bloom {__version__} (squidGuard 1.6 compatible)\n")
        return 0
    offset = 0.0
    if args.start_time is not None:
        try:
            offset = clock_offset(args.start_time)
        except ValueError as exc:
            sys.stderr.write(f"squidguard-bloom: {exc}\n")
            return EXIT_USAGE
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() + offset))
        sys.stderr.write(f"squidguard-bloom: emulating date {stamp}\n")
    config = args.config or (str(example_config()) if args.example else DEFAULT_CONFIG)

    # Imported here so that -h and -v work even if the engine cannot load.
    from squidguard_bloom import runtime  # noqa: PLC0415 - keep -h/-v independent of the engine

    if args.compile is not None or args.update:
        return runtime.compile_lists(config, args.compile or "all", update=args.update,
                                     progress=args.progress)
    if args.check:
        return runtime.check(config)
    options = runtime.Options(
        config=config,
        debug=args.debug,
        passthrough=args.passthrough,
        clock_offset=offset,
        emergency=args.emergency,
        style=args.reply_style,
        explain=args.explain,
        example=args.example,
        fast_path=args.fast_path,
    )
    return runtime.run(options)


if __name__ == "__main__":  # pragma: no cover
    os._exit(main())
