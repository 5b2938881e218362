"""``squidguard-bloom``: the command Squid runs, with squidGuard's flags.

    squidguard-bloom [-c FILE] [-d] [-C FILE|all] [-u] [-b] [-P] [-t TIME] [-v] [-h]
                     [--explain] [--emergency pass|block:URL] [--reply-style squid34|legacy]
                     [--example] [--check] [--no-fast-path]

Exit codes follow squidGuard: 0 normal, 1 usage, 4 fatal error with -P.

Squid starts this for every helper child and waits for it, so the flags are
read by a getopt-style loop of a few lines rather than argparse (which,
with the gettext and locale lookups it brings, costs a few milliseconds of
every start).  Short flags combine (``-dP``) and take their value attached
or as the next word (``-cFILE``, ``-c FILE``), as squidGuard's getopt(3)
does; long options take ``--name=VALUE`` or ``--name VALUE`` and may be
shortened to any unambiguous prefix.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from collections.abc import Sequence

from squidguard_bloom import __version__

DEFAULT_CONFIG = "/etc/squidguard/squidGuard.conf"
EXIT_USAGE = 1
EXIT_PASSTHROUGH = 4

USAGE = """\
Usage: squidguard-bloom [-bduPv] [-C block] [-t time] [-c file] [--explain] [...]
Options:
  -v          : show version number
  -d          : all errors to stderr (and the traceback of an internal error)
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
  --status-interval SECONDS
              : seconds between status lines in squidGuard.log (default 60)
"""


REPLY_STYLES = ("squid34", "legacy")
#: One-letter flags that take a value, and those that do not: letter -> Args field.
SHORT_VALUES = {"c": "config", "C": "compile", "t": "start_time"}
SHORT_FLAGS = {"d": "debug", "u": "update", "b": "progress", "P": "passthrough",
               "v": "version", "h": "help", "?": "help"}
#: Long options: name -> (Args field, what a flag stores there, or None: takes a value).
LONG: dict[str, tuple[str, bool | None]] = {
    "help": ("help", True), "explain": ("explain", True), "emergency": ("emergency", None),
    "reply-style": ("reply_style", None), "example": ("example", True),
    "check": ("check", True), "no-fast-path": ("fast_path", False),
    "status-interval": ("status_interval", None),
}


class Args:
    """The command line, read: one field per flag."""

    __slots__ = ("check", "compile", "config", "debug", "emergency", "example", "explain",
                 "fast_path", "help", "passthrough", "progress", "reply_style", "start_time",
                 "status_interval", "update", "version")

    def __init__(self) -> None:
        self.config: str | None = None
        self.compile: str | None = None
        self.start_time: str | None = None
        self.emergency: str | None = None
        self.reply_style = "squid34"
        self.status_interval: str | None = None
        self.fast_path = True
        self.debug = self.update = self.progress = self.passthrough = False
        self.version = self.help = self.explain = self.example = self.check = False


class UsageError(Exception):
    """A command line that cannot be read (the message says why)."""


def _long(args: Args, word: str, rest: list[str]) -> None:
    given, eq, value = word[2:].partition("=")
    names = [given] if given in LONG else [n for n in LONG if n.startswith(given)]
    if not names:
        raise UsageError(f"unknown option --{given}")
    if len(names) > 1:
        raise UsageError(f"ambiguous option --{given} (--{', --'.join(names)})")
    name = names[0]
    field, flag = LONG[name]
    if flag is not None:
        if eq:
            raise UsageError(f"--{name} takes no value")
        setattr(args, field, flag)
        return
    if not eq:
        if not rest:
            raise UsageError(f"--{name} needs a value")
        value = rest.pop(0)
    if field == "reply_style" and value not in REPLY_STYLES:
        raise UsageError(f"--reply-style {value!r}: expected one of {', '.join(REPLY_STYLES)}")
    if field == "status_interval":
        try:
            ok = 1 <= float(value) <= 86400
        except ValueError:
            ok = False
        if not ok:
            raise UsageError(f"--status-interval {value!r}: expected seconds from 1 to 86400")
    setattr(args, field, value)


def _short(args: Args, word: str, rest: list[str]) -> None:
    for i, letter in enumerate(word[1:], 1):
        if letter in SHORT_FLAGS:
            setattr(args, SHORT_FLAGS[letter], True)
            continue
        if letter not in SHORT_VALUES:
            raise UsageError(f"unknown option -{letter}")
        value = word[i + 1 :]
        if not value:
            if not rest:
                raise UsageError(f"option -{letter} needs a value")
            value = rest.pop(0)
        setattr(args, SHORT_VALUES[letter], value)
        return


def read_args(argv: Sequence[str]) -> Args:
    """squidGuard-compatible flags plus our long options; UsageError if unreadable."""
    args, rest = Args(), list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--":
            if rest:
                raise UsageError(f"unexpected argument {rest[0]!r}")
        elif word.startswith("--"):
            _long(args, word, rest)
        elif word.startswith("-") and word != "-":
            _short(args, word, rest)
        else:
            raise UsageError(f"unexpected argument {word!r}")
    return args


def parse_args(argv: Sequence[str] | None) -> Args:
    """read_args of argv (default: sys.argv[1:]); on a usage error, say why and exit 1."""
    try:
        return read_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        sys.stderr.write(f"squidguard-bloom: {exc}\n" + USAGE % DEFAULT_CONFIG)
        raise SystemExit(EXIT_USAGE) from None


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


def example_config() -> str:
    """The bundled example squidGuard.conf (its lists sit beside it)."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return os.path.join(package, "defaults", "squidGuard.conf")


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
    config = args.config or (example_config() if args.example else DEFAULT_CONFIG)

    # Imported here so that -h and -v work even if the engine cannot load.  The
    # ~100k objects the imports create all live until exit: collecting garbage
    # among them meanwhile only slows the start, and frozen they are never
    # scanned again.
    gc.disable()
    try:
        from squidguard_bloom.helper import program  # noqa: PLC0415 - -h/-v work without the engine
    finally:
        gc.freeze()
        gc.enable()

    if args.compile is not None or args.update:
        return program.compile_lists(config, args.compile or "all", update=args.update,
                                     progress=args.progress)
    if args.check:
        return program.check(config)
    options = program.Options(
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
    if args.status_interval is not None:
        options.status_interval = float(args.status_interval)
    return program.run(options)


def command() -> None:
    """The console script: :func:`main`, then exit without the interpreter's teardown.

    By then the helper has flushed and closed what it wrote (its logs, the
    welcome filter); freeing every module and object one by one would only
    add milliseconds to each child's exit.
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        # Squid may have closed the pipe, or the stream is closed already.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    command()
