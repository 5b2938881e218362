"""The helper program: start, serve, reload on SIGHUP, stop; ``--check`` and ``-C``.

:func:`run` builds a :class:`~squidguard_bloom.helper.runtime.Runtime`, hands
it to the request loop (:mod:`squidguard_bloom.helper.loop`), swaps in a new
one on SIGHUP (keeping the old one when the new config is bad), and falls
back to emergency mode when the configuration cannot be loaded at start, as
squidGuard does: every problem goes to stderr (Squid's cache.log) with its
file:line, then the helper keeps answering, so Squid does not respawn it in
a tight loop.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

from squidguard_bloom import __version__
from squidguard_bloom.core.config.errors import ConfigError
from squidguard_bloom.core.config.loader import load_config
from squidguard_bloom.errors import SquidguardBloomError
from squidguard_bloom.helper.errorreport import ErrorReport
from squidguard_bloom.helper.health import Health, emergency_line
from squidguard_bloom.helper.loop import Loop, install_signal_handlers, serve, stop_status_timer
from squidguard_bloom.helper.runtime import (
    DEBIAN_DBHOME,
    DEBIAN_LOGDIR,
    EmergencyBlock,
    Options,
    Runtime,
    build,
    emergency_runtime,
)

EXIT_FATAL_PASSTHROUGH = 4
EXIT_EMERGENCY_EOF = 255  # squidGuard's status after emergency mode ends


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
    problems: list[str] = []
    why = ""
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
    if emergency:
        url = rt.policy.template if isinstance(rt.policy, EmergencyBlock) else None
        first = problems[0] if problems else ""
        _main_log(rt, "ERROR: " + emergency_line(rt.emergency_mode, url,
                                                  f"{why}; first: {first}"))

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

    helper = Loop(rt, reload=reload, explain=sys.stderr if options.explain else None,
                  errors=ErrorReport(traceback=options.debug))
    helper.health = Health(options.status_interval)
    # helper.rt changes on reload: look the sink up when the signal comes
    install_signal_handlers(helper, lambda: helper.rt.sink.reopen())  # noqa: PLW0108
    _main_log(rt, f"INFO: squidguard-bloom ready for requests ({time.time():.3f})")
    helper.write_status()
    try:
        serve(helper)
    finally:
        stop_status_timer()
        _main_log(helper.rt, f"INFO: squidguard-bloom stopped ({time.time():.3f})")
        helper.rt.close()
    return EXIT_EMERGENCY_EOF if emergency and helper.rt.emergency is not None else 0


#: Seconds --check waits for a shared welcome state's first answer from Redis.
CHECK_WAIT = 10.0


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
    welcome = rt.welcome
    settle = getattr(welcome, "settle", None)
    if welcome is not None and settle is not None:  # shared: give Redis time to answer
        settle(CHECK_WAIT)
        rt.notes = [n for n in rt.notes if not n.startswith("welcome: ")]
        rt.notes.append(f"welcome: {welcome.describe()}")
    for note in rt.notes:
        print(note, file=sys.stderr)
    if not getattr(welcome, "healthy", True):
        print(f"{config_path}: NOT usable as it is: the shared welcome state is misconfigured "
              f"(see above); filtering works, but nobody is welcomed", file=sys.stderr)
        rt.close()
        return 1
    engine = rt.policy
    count = getattr(engine, "list_count", 0)
    print(f"{config_path}: OK ({count} list(s) loaded)", file=sys.stderr)
    rt.close()
    return 0


def compile_lists(config_path: str, which: str, *, update: bool = False,
                  progress: bool = False) -> int:
    """``-C all|FILE``: write the compiled form of the domain and url lists, then exit."""
    from squidguard_bloom.core.lists.store import compile_list  # noqa: PLC0415 - only -C needs it

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
