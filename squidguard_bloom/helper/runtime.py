"""What a running helper needs (:class:`Runtime`), and building it: everything slow or fallible.

:func:`build` loads the configuration and lists into a :class:`Runtime`
(raising on any problem); :func:`emergency_runtime` is the one that answers
when that fails (pass everything, or block everything as the admin chose).
:mod:`squidguard_bloom.helper.program` decides when to build which and
hands them to the request loop (:mod:`squidguard_bloom.helper.loop`).
"""

from __future__ import annotations

import os
import re
import sys

from squidguard_bloom.core.config.errors import ConfigError
from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.core.config.model import Config, Diagnostic, SharedConfig, WelcomeConfig
from squidguard_bloom.core.engine.decision import PASS_ALL, REDIRECT, REWRITE, Decision, Policy
from squidguard_bloom.core.engine.engine import Engine
from squidguard_bloom.core.engine.request import Request
from squidguard_bloom.core.engine.template import TemplateValues, expand
from squidguard_bloom.core.urlnorm import parse_target
from squidguard_bloom.helper.fastplan import FastPlanner
from squidguard_bloom.helper.health import STATUS_INTERVAL
from squidguard_bloom.helper.reqlog import LogSink
from squidguard_bloom.helper.welcome import Welcome, WelcomeSettings
from squidguard_bloom.native.fastpath import FastPath
from squidguard_bloom.records import Record, field

TYPE_CHECKING = False  # read as True by type checkers; spares importing typing at start-up
if TYPE_CHECKING:
    from squidguard_bloom.helper.sharedwelcome.settings import SharedSettings

DEBIAN_DBHOME = "/var/lib/squidguard/db"
DEBIAN_LOGDIR = "/var/log/squidguard"
MAIN_LOG = "squidGuard.log"


class Runtime(Record):
    """Everything a running helper needs, built once per (re)load."""

    policy: Policy
    sink: LogSink
    welcome: Welcome | None = None
    welcome_log: str | None = None  # where first-visit redirects are logged
    style: str = "squid34"
    emergency: Decision | None = None  # set: answer every request with this
    clock_offset: float = 0.0  # squidGuard's -t
    notes: list[str] = field(default_factory=list)
    main_log: str | None = None  # squidGuard.log in logdir: start/stop/reload messages
    fast: FastPath | None = None  # answers the common lines of a batch in C
    emergency_mode: str = "no"  # for the status line: "no", "pass" or "block"

    def close(self) -> None:
        """Release files and the filter mapping."""
        if self.welcome is not None:
            self.welcome.close()
        self.sink.close()


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
    status_interval: float = STATUS_INTERVAL  # seconds between status lines in squidGuard.log


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


def _fast_path(engine: Engine, welcome: Welcome | None) -> FastPath:
    """The C fast path over the engine's plan, doing the welcome rule's filter work too."""
    planner = FastPlanner(engine, welcome)
    return FastPath(planner.plan, welcome.filters if welcome is not None else None)


def _say(message: str) -> None:
    sys.stderr.write(f"squidguard-bloom[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def _shared_settings(shared: SharedConfig, block: WelcomeConfig) -> SharedSettings:
    """The shared backend's settings, its password read from its file."""
    from squidguard_bloom.helper.sharedwelcome.settings import SharedSettings  # noqa: PLC0415

    urls = ("cluster", *shared.urls) if shared.cluster else shared.urls
    where = {"shared": f"{shared.pos.file}:{shared.pos.line}: welcome shared {' '.join(urls)}",
             "capacity": f"{block.pos.file}:{block.pos.line}: welcome"}
    password = None
    if shared.password_file is not None:
        assert shared.password_pos is not None
        pos = shared.password_pos
        where["shared-password-file"] = (f"{pos.file}:{pos.line}: welcome shared-password-file "
                                         f"{shared.password_file}")
        try:
            with open(shared.password_file, encoding="utf-8") as fh:
                password = fh.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([Diagnostic(pos, (
                f"welcome shared-password-file {shared.password_file}: cannot read it "
                f"({getattr(exc, 'strerror', None) or exc}); its first line must be the Redis "
                f"password, readable by the user the helper runs as"))]) from exc
        if not password:
            raise ConfigError([Diagnostic(pos, (
                f"welcome shared-password-file {shared.password_file}: its first line is "
                f"empty; write the Redis password there"))])
    return SharedSettings(urls=shared.urls, cluster=shared.cluster, user=shared.user,
                          password=password, deadline=shared.deadline, fallback=shared.fallback,
                          shards=shared.shards, prefix=shared.prefix, where=where)


def _open_welcome(block: WelcomeConfig, settings: WelcomeSettings) -> Welcome:
    """The Welcome of a welcome block: a local filter, or a state shared on Redis."""
    shared = block.shared
    if shared is None:
        return Welcome(settings)
    try:  # only now: a helper without a shared line never loads redis-py
        from squidguard_bloom.helper.sharedwelcome.welcome import (  # noqa: PLC0415
            SharedWelcome,
        )
    except ImportError as exc:
        raise ConfigError([Diagnostic(shared.pos, (
            f"welcome shared needs the Python package redis ({exc}); install it with "
            f"pip install 'squidguard-bloom[redis]'"))]) from exc
    return SharedWelcome(settings, _shared_settings(shared, block), _say)


def build(options: Options) -> Runtime:
    """A ready Runtime for options.config; raises SquidguardBloomError/OSError on problems."""
    config = _load(options)
    engine = Engine(config, explain=options.explain)
    sink = LogSink(sys.stderr if options.debug else None, clock_offset=options.clock_offset)
    welcome = None
    if config.welcome is not None:
        state = None  # --example keeps its state in its temporary directory
        if options.example and options.workdir is not None:
            state = os.path.join(options.workdir, "welcome.bloom")
        settings = WelcomeSettings.from_config(config.welcome, config.dbhome, state)
        welcome = _open_welcome(config.welcome, settings)
    welcome_log = config.welcome.log.path if config.welcome and config.welcome.log else None
    notes = [str(w) for w in config.warnings] + engine.notes
    if welcome is not None:
        notes.append(f"welcome: {welcome.describe()}")
    # --explain and legacy replies are rare and need the Python path's details.
    use_fast = options.fast_path and not options.explain and options.style == "squid34"
    rt = Runtime(policy=engine, sink=sink, welcome=welcome, welcome_log=welcome_log,
                 style=options.style, clock_offset=options.clock_offset, notes=notes,
                 fast=_fast_path(engine, welcome) if use_fast else None)
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


def _logdir_setting(options: Options) -> str:
    """Where squidGuard.log goes when the configuration cannot be loaded."""
    if options.example and options.workdir is not None:
        return options.workdir
    try:
        with open(options.config, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return DEBIAN_LOGDIR
    m = re.search(r"^[ \t]*logdir[ \t]+([^#\s]+)", text, re.M)
    return m.group(1) if m else DEBIAN_LOGDIR


def emergency_runtime(options: Options, why: str) -> Runtime:
    """The Runtime of emergency mode: pass everything, or block as the admin chose."""
    choice = options.emergency or _emergency_setting(options.config) or "pass"
    sink = LogSink(sys.stderr if options.debug else None, clock_offset=options.clock_offset)
    if choice.startswith("block"):
        url = choice[5:].strip(" :") or "http://blocked.invalid/"
        policy: Policy = EmergencyBlock(url)
        rt = Runtime(policy=policy, sink=sink, style=options.style,
                     clock_offset=options.clock_offset, emergency_mode="block")
        mode = f"blocking everything (redirect to {url})"
    else:
        rt = Runtime(policy=Policy(), sink=sink, emergency=PASS_ALL, style=options.style,
                     clock_offset=options.clock_offset, emergency_mode="pass")
        mode = "passing everything unfiltered (choose 'emergency block URL' to fail closed)"
    rt.notes.append(f"going into emergency mode, {mode}: {why}")
    rt.main_log = os.path.join(_logdir_setting(options), MAIN_LOG)
    return rt


