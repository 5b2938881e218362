"""Start-up, reload and shutdown: everything slow or fallible, away from the hot path.

:func:`run` loads the configuration and lists into a :class:`Runtime`,
hands it to the request loop (:mod:`squidguard_bloom.helper.loop`), swaps in a
new one on SIGHUP (keeping the old one when the new config is bad), and
falls back to emergency mode when the configuration cannot be loaded at
start, as squidGuard does: every problem goes to stderr (Squid's
cache.log) with its file:line, then the helper keeps answering, so Squid
does not respawn it in a tight loop.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator

from squidguard_bloom import __version__
from squidguard_bloom.core.config import ConfigError, load_config
from squidguard_bloom.core.config.model import Config
from squidguard_bloom.core.engine.decision import PASS_ALL, REDIRECT, REWRITE, Decision
from squidguard_bloom.core.engine.request import Request
from squidguard_bloom.core.engine.template import TemplateValues, expand
from squidguard_bloom.core.records import Record
from squidguard_bloom.core.urlnorm import parse_target
from squidguard_bloom.errors import SquidguardBloomError
from squidguard_bloom.helper.loop import (
    ErrorReport,
    Helper,
    Policy,
    Runtime,
    install_signal_handlers,
    serve,
)
from squidguard_bloom.helper.reqlog import LogSink
from squidguard_bloom.helper.welcome import Welcome, WelcomeSettings

DEBIAN_DBHOME = "/var/lib/squidguard/db"
DEBIAN_LOGDIR = "/var/log/squidguard"
MAIN_LOG = "squidGuard.log"
EXIT_FATAL_PASSTHROUGH = 4
EXIT_EMERGENCY_EOF = 255  # squidGuard's status after emergency mode ends


class Options(Record):
    """What the command line asked for (see cli.py)."""

    config: str
    debug: bool = False
    passthrough: bool = False
    clock_offset: float = 0.0
    emergency: str | None = None
    style: str = "squid34"
    explain: bool = False
    example: bool = False
    workdir: str | None = None  # --example: where state and logs go
    fast_path: bool = True  # answer the common requests in C (--no-fast-path: never)


def _defaults() -> str:
    """squidguard_bloom/defaults: the bundled example configuration and lists."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return os.path.join(package, "defaults")


def _load(options: Options) -> Config:
    if options.example:
        assert options.workdir is not None
        return load_config(options.config, dbhome=os.path.join(_defaults(), "db"),
                           logdir=options.workdir)
    return load_config(options.config, dbhome=DEBIAN_DBHOME, logdir=DEBIAN_LOGDIR)


def _welcome_settings(config: Config, options: Options) -> WelcomeSettings | None:
    w = config.welcome
    if w is None:
        return None
    state = w.state or os.path.join(config.dbhome, "welcome.bloom")
    if options.example and options.workdir is not None:
        state = os.path.join(options.workdir, "welcome.bloom")
    exempt = set(w.exempt_hosts)
    own = parse_target(re.sub(r"^\d{3}:", "", w.redirect).split("%", 1)[0])
    if own is not None:
        exempt.add(own.host)
    return WelcomeSettings(redirect=w.redirect, key=w.key, capacity=w.capacity, error=w.error,
                           state=state, window=w.window, status=w.status,
                           exempt_hosts=frozenset(exempt))


def build(options: Options) -> Runtime:
    """A ready Runtime for options.config; raises SquidguardBloomError/OSError on problems."""
    from squidguard_bloom.core.engine.engine import Engine  # noqa: PLC0415 - RE2 and lists load only here
    from squidguard_bloom.native.fastpath import FastPath  # noqa: PLC0415 - as Engine

    config = _load(options)
    engine = Engine(config, explain=options.explain)
    sink = LogSink(sys.stderr if options.debug else None, clock_offset=options.clock_offset)
    settings = _welcome_settings(config, options)
    welcome = Welcome(settings) if settings is not None else None
    welcome_log = config.welcome.log.path if config.welcome and config.welcome.log else None
    notes = [str(w) for w in config.warnings] + engine.notes
    if welcome is not None:
        notes.append(f"welcome: {welcome.describe()}")
    # --explain and legacy replies are rare and need the Python path's details.
    use_fast = options.fast_path and not options.explain and options.style == "squid34"
    rt = Runtime(policy=engine, sink=sink, welcome=welcome, welcome_log=welcome_log,
                 style=options.style, clock_offset=options.clock_offset, notes=notes,
                 fast=FastPath(engine, welcome) if use_fast else None)
    rt.main_log = os.path.join(config.logdir, MAIN_LOG)
    return rt


class EmergencyBlock(Policy):
    """Emergency mode chosen as ``block URL``: every request goes to URL."""

    def __init__(self, template: str) -> None:
        self.template = template

    def decide(self, req: Request, now: float) -> Decision:
        """Redirect everything to the emergency page (templates expanded)."""
        target = parse_target(req.url)
        orig = target.orig if target is not None else req.url
        status, url = expand(self.template, TemplateValues(req.client, req.fqdn, req.user,
                                                           "default", "emergency", orig))
        why = "emergency mode: blocking everything"
        return Decision(REDIRECT if status else REWRITE, url, status or 302,
                        target.host if target else "", why)


def _emergency_setting(path: str) -> str | None:
    """The config's ``emergency`` line, read even when the rest cannot be parsed."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    m = re.search(r"^[ \t]*emergency[ \t]+([^#\r\n]+)", text, re.M)
    return m.group(1).strip() if m else None


def emergency_runtime(options: Options, why: str) -> Runtime:
    """The Runtime of emergency mode: pass everything, or block as the admin chose."""
    choice = options.emergency or _emergency_setting(options.config) or "pass"
    sink = LogSink(sys.stderr if options.debug else None, clock_offset=options.clock_offset)
    if choice.startswith("block"):
        url = choice[5:].strip(" :") or "http://blocked.invalid/"
        policy: Policy = EmergencyBlock(url)
        rt = Runtime(policy=policy, sink=sink, style=options.style,
                     clock_offset=options.clock_offset)
        mode = f"blocking everything (redirect to {url})"
    else:
        rt = Runtime(policy=Policy(), sink=sink, emergency=PASS_ALL, style=options.style,
                     clock_offset=options.clock_offset)
        mode = "passing everything unfiltered (choose 'emergency block URL' to fail closed)"
    rt.notes.append(f"going into emergency mode, {mode}: {why}")
    return rt


def _say(message: str) -> None:
    sys.stderr.write(f"squidguard-bloom[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def _problem_lines(exc: BaseException) -> Iterator[str]:
    if isinstance(exc, ConfigError):
        yield from (str(d) for d in exc.diagnostics)
    elif isinstance(exc, OSError):
        yield f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
    else:
        yield str(exc)


def _main_log(rt: Runtime, message: str) -> None:
    path = rt.main_log
    if path is not None:
        rt.sink.write(path, message)
        rt.sink.flush()


def run(options: Options) -> int:
    """Serve Squid's requests on stdin/stdout until EOF; the exit status."""
    if not options.example:
        return _run(options)
    import shutil  # noqa: PLC0415 - only --example needs these, not a helper's start
    import tempfile  # noqa: PLC0415

    tmp = options.workdir = tempfile.mkdtemp(prefix="squidguard-bloom-example-")
    options.debug = True
    try:
        return _run(options)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(options: Options) -> int:
    started = time.time()
    emergency = False
    try:
        rt = build(options)
    except (SquidguardBloomError, OSError, ValueError) as exc:
        problems = list(_problem_lines(exc))
        for line in problems:
            _say(line)
        if options.passthrough:
            _say("not going into emergency mode because -P was used; exiting with status 4")
            return EXIT_FATAL_PASSTHROUGH
        why = f"{len(problems)} problem(s) in {options.config}, see above"
        rt = emergency_runtime(options, why)
        emergency = True
    for note in rt.notes:
        _say(note)
    _main_log(rt, f"INFO: squidguard-bloom {__version__} started ({started:.3f})")

    def reload(old: Runtime) -> Runtime:
        try:
            new = build(options)
        except (SquidguardBloomError, OSError, ValueError) as exc:
            for line in _problem_lines(exc):
                _say(line)
            _say("SIGHUP: the new configuration has errors; keeping the one in use")
            _main_log(old, "ERROR: reload failed, configuration unchanged (see stderr)")
            return old
        old.close()
        for note in new.notes:
            _say(note)
        _main_log(new, "WARN: Received sigHUP, reloaded configuration")
        return new

    helper = Helper(rt, reload=reload, explain=sys.stderr if options.explain else None,
                    errors=ErrorReport(traceback=options.debug))
    # helper.rt changes on reload: look the sink up when the signal comes
    install_signal_handlers(helper, lambda: helper.rt.sink.reopen())  # noqa: PLW0108
    _main_log(rt, f"INFO: squidguard-bloom ready for requests ({time.time():.3f})")
    try:
        serve(helper)
    finally:
        _main_log(helper.rt, f"INFO: squidguard-bloom stopped ({time.time():.3f})")
        helper.rt.close()
    return EXIT_EMERGENCY_EOF if emergency and helper.rt.emergency is not None else 0


def check(config_path: str) -> int:
    """``--check``: load everything, print problems and a summary; 0 when usable."""
    options = Options(config=config_path)
    try:
        rt = build(options)
    except (SquidguardBloomError, OSError, ValueError) as exc:
        for line in _problem_lines(exc):
            print(line, file=sys.stderr)
        print(f"{config_path}: NOT usable; the helper would go into emergency mode",
              file=sys.stderr)
        return 1
    for note in rt.notes:
        print(note, file=sys.stderr)
    engine = rt.policy
    count = getattr(engine, "list_count", 0)
    print(f"{config_path}: OK ({count} list(s) loaded)", file=sys.stderr)
    rt.close()
    return 0


def compile_lists(config_path: str, which: str, *, update: bool = False,
                  progress: bool = False) -> int:
    """``-C all|FILE``: write the compiled form of the domain and url lists, then exit."""
    from squidguard_bloom.core.lists import compile_list  # noqa: PLC0415 - only -C needs it

    if update:
        _say("-u: squidguard-bloom has no .diff updates; edit the text list and run -C "
             "(a stale compiled list is never used: it is rebuilt or ignored)")
        return 0
    try:
        config = load_config(config_path, dbhome=DEBIAN_DBHOME, logdir=DEBIAN_LOGDIR)
    except ConfigError as exc:
        for line in _problem_lines(exc):
            _say(line)
        return 1
    done = 0
    seen: set[str] = set()
    for dest in config.dests.values():
        for kind, path in (("domain", dest.domainlist), ("url", dest.urllist)):
            if path is None or path in seen or (which != "all" and not path.endswith(which)):
                continue
            seen.add(path)
            t0 = time.perf_counter()
            try:
                out = compile_list(kind, path)
            except (SquidguardBloomError, OSError) as exc:
                _say(f"cannot compile {path}: {exc}")
                return 1
            done += 1
            if progress:
                print(f"{path} -> {out} ({time.perf_counter() - t0:.2f} s)", flush=True)
    if done == 0:
        _say(f"-C {which}: no domainlist or urllist of {config_path} matches; nothing compiled")
    return 0
