"""The helper's own log files, found in its squidGuard.conf: what the shipper ships by default.

The helper writes ``squidGuard.log`` (start, stop, reload) in its ``logdir``
and request lines to every file a ``log`` line of the configuration names,
relative to that ``logdir`` (``blocked.log`` in an ACL, ``welcome.log`` in the
welcome block, ...). Only the configuration *parser* is used: the lists it
names are never opened, so the shipper needs no access to the helper's
database, and a configuration the helper would reject still yields its logs.
"""

from __future__ import annotations

import os
from pathlib import Path

from squidguard_bloom.core.config.loader import DEBIAN_LOGDIR
from squidguard_bloom.core.config.parser import Parser
from squidguard_bloom.shipper.errors import ShipConfigError

HELPER_CONFIG = Path("/etc/squidguard/squidGuard.conf")  # the helper's -c default
MAIN_LOG = "squidGuard.log"  # written by squidguard_bloom.helper.runtime in logdir


def helper_logs(config: Path) -> dict[str, Path]:
    """Stream name -> path of every log file the helper writes with ``config``.

    A missing configuration gives the helper's compiled-in main log
    (``/var/log/squidguard/squidGuard.log``). Raises ``ShipConfigError`` when the
    file exists but cannot be read, or when two logs share a file name.
    """
    try:
        text = config.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return {Path(MAIN_LOG).stem: Path(DEBIAN_LOGDIR) / MAIN_LOG}
    except OSError as exc:
        raise ShipConfigError(
            f"cannot read the helper's configuration {config} to find its logs: "
            f"{exc.strerror}; make it readable by the shipper's user, or list the files "
            "to ship under [files] (or with --file)"
        ) from exc
    parser = Parser(str(config), text)
    parser.parse()
    logdir = parser.settings["logdir"].text if "logdir" in parser.settings else DEBIAN_LOGDIR
    logdir = os.path.abspath(logdir)
    named = [f.tok.text for f in parser.files if f.kind == "log"]
    if parser.welcome is not None:
        for key in ("log", "logfile"):
            args = parser.welcome.get(key, (None, []))[1]
            if args:
                named.append(args[-1].text)
    paths = [os.path.join(logdir, MAIN_LOG)]
    for name in named:
        path = os.path.normpath(os.path.join(logdir, name))  # an absolute name stays
        if path not in paths:
            paths.append(path)
    streams: dict[str, Path] = {}
    for path in paths:
        stem = Path(path).stem
        if stem in streams:
            raise ShipConfigError(
                f"{config}: the helper's logs {streams[stem]} and {path} share the name "
                f"'{stem}'; list the files to ship under [files] with a name each"
            )
        streams[stem] = Path(path)
    return streams
